"""A re-load sends PostgreSQL only the readings that changed (storage/operational/changed_rows.py),
and ends exactly where a load comparing in PostgreSQL ends."""

from __future__ import annotations

import hashlib
from datetime import timezone

import polars as pl
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.storage.operational.changed_rows import PreviousLoad, changes_since, row_digest
from greenstream_dagster.storage.operational.load import DayLoad, fetch_previous_load_name, load_partition
from greenstream_dagster.storage.operational.partitions import partition_name
from greenstream_dagster.storage.operational.store import OperationalStore
from greenstream_dagster_tests.operational_frames import DAY, no_rejected, no_revisions, scored
from greenstream_dagster_tests.test_operational_load import row_versions, stored


def load(url, readings, name, previous=None):
    return load_partition(OperationalStore(url),
                          DayLoad(DAY, readings, no_rejected(), no_revisions(), previous=previous, digest_name=name))


def rescore(readings: pl.DataFrame, hit: pl.Expr) -> pl.DataFrame:
    return readings.with_columns(
        quality_score=pl.when(hit).then(pl.lit(55, pl.Int32)).otherwise(pl.col("quality_score")),
        quality_grade=pl.when(hit).then(pl.lit("C")).otherwise(pl.col("quality_grade")),
    )


def test_a_reload_with_the_last_digest_copies_only_changed_readings(database_url):
    first = load(database_url, scored(meters=10), "one")
    assert first.readings_copied == 960 and fetch_previous_load_name(OperationalStore(database_url), DAY) == "one"
    before = row_versions(database_url)
    hit = pl.col("meter_id").eq("SM-3") & pl.col("reading_ts").dt.hour().is_between(6, 7)  # 8 readings
    late = pl.concat([
        rescore(scored(meters=10), hit).filter(pl.col("meter_id") != "SM-9"),  # SM-9's readings are gone
        scored(meters=11).filter(pl.col("meter_id") == "SM-11"),  # a new meter
    ])
    again = load(database_url, late, "two", PreviousLoad("one", first.digest))
    assert again.readings_copied == 8 + 96  # the re-scored and the new, nothing else
    assert (again.inserted, again.updated, again.deleted, again.unchanged) == (96, 8, 96, 960 - 96 - 8)
    assert stored(database_url).equals(late.sort("meter_id", "reading_ts"))
    after = row_versions(database_url)
    untouched = late.filter(~hit & (pl.col("meter_id") != "SM-11")).select("meter_id", "reading_ts").rows()
    assert all(after[key] == before[key] for key in untouched)  # not rewritten
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM removed_readings WHERE meter_id = 'SM-9'").fetchone()[0] == 96
    assert fetch_previous_load_name(OperationalStore(database_url), DAY) == "two"


def test_a_reading_the_digest_calls_new_but_stored_is_upserted_not_refused(database_url):
    """New readings are COPYed straight into the partition; should the digest be wrong about one (its key is
    stored after all), they are upserted instead of the load failing on the key."""
    readings = scored(meters=3)
    first = load(database_url, readings, "one")
    forged = first.digest.with_columns(  # one key swapped for one never stored: same count, same name
        meter_id=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("SM-404")).otherwise(pl.col("meter_id")))
    with psycopg.connect(database_url, autocommit=True) as conn:  # the scratch a lost session left behind
        conn.execute(f"CREATE TABLE load_staging.{partition_name('meter_readings', DAY)}_new (stale int)")
    again = load(database_url, rescore(readings, pl.col("meter_id") == "SM-2"), "two", PreviousLoad("one", forged))
    assert (again.inserted, again.updated, again.deleted) == (0, 96, 0)
    assert stored(database_url).equals(rescore(readings, pl.col("meter_id") == "SM-2").sort("meter_id", "reading_ts"))


def test_a_digest_that_does_not_describe_the_partition_rolls_the_load_back(database_url):
    """The digest names a reading never stored instead of one stored (same count, same name): the
    readings the input dropped cannot all be deleted, and nothing of the load is committed."""
    readings = scored(meters=3)
    first = load(database_url, readings, "one")
    forged = first.digest.with_columns(
        meter_id=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("SM-404")).otherwise(pl.col("meter_id")))
    dropped = readings.filter(pl.int_range(pl.len()) != 0)  # the first reading is no longer in the input
    with pytest.raises(RuntimeError, match="did not describe its partition"):
        load(database_url, rescore(dropped, pl.col("meter_id") == "SM-2"), "two", PreviousLoad("one", forged))
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts"))
    assert fetch_previous_load_name(OperationalStore(database_url), DAY) == "one"


def test_nothing_new_copies_nothing(database_url):
    readings = scored(meters=5)
    first = load(database_url, readings, "one")
    again = load(database_url, readings, "two", PreviousLoad("one", first.digest))
    assert (again.readings_copied, again.changed, again.unchanged) == (0, 0, 480)
    # The day's load record is left as it was: the first digest still describes the day.
    assert again.digest_name == "one" and fetch_previous_load_name(OperationalStore(database_url), DAY) == "one"


def test_a_digest_that_is_not_the_last_load_is_not_trusted(database_url):
    first = load(database_url, scored(meters=4), "one")
    load(database_url, rescore(scored(meters=4), pl.col("meter_id") == "SM-1"), "two")  # no digest handed in
    back = scored(meters=4)
    result = load(database_url, back, "three", PreviousLoad("one", first.digest))  # stale: "two" is current
    assert result.readings_copied == 384  # compared in PostgreSQL instead
    assert result.updated == 96
    assert stored(database_url).equals(back.sort("meter_id", "reading_ts"))


def test_a_partition_that_lost_rows_is_compared_in_postgres(database_url):
    readings = scored(meters=4)
    first = load(database_url, readings, "one")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM meter_readings WHERE meter_id = 'SM-2'")  # behind the platform's back
    result = load(database_url, readings, "two", PreviousLoad("one", first.digest))
    assert result.readings_copied == 384 and result.inserted == 96
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts"))


def test_one_changed_reading_among_many_with_empty_lists_is_copied(database_url):
    readings = scored(meters=3)
    first = load(database_url, readings, "one")
    late = rescore(readings, (pl.col("meter_id") == "SM-3") & (pl.col("reading_ts") == pl.col("reading_ts").max()))
    again = load(database_url, late, "two", PreviousLoad("one", first.digest))
    assert (again.readings_copied, again.updated) == (1, 1)
    assert stored(database_url).equals(late.sort("meter_id", "reading_ts"))


def content_ids(url: str) -> list[tuple[str, str]]:
    """(stored record_id, SHA-256 of meter|UTC time|value text computed here) of every reading."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT record_id, meter_id, reading_ts, value_raw FROM meter_readings").fetchall()
    return [(rid, hashlib.sha256(f"{m}|{ts.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}|{v or ''}".encode()).hexdigest())
            for rid, m, ts, v in rows]


def test_each_stored_reading_gets_its_content_id_on_every_load_path(database_url):
    """Readings reach the load without record_id: it is derived for what is copied, whether the
    day is new, compared in PostgreSQL, or only its changed readings are sent."""
    def all_match() -> bool:
        ids = content_ids(database_url)
        return len(ids) == 288 and all(stored_id == want for stored_id, want in ids)

    assert load(database_url, scored(meters=3), "one").readings_copied == 288 and all_match()  # a new day
    load_partition(OperationalStore(database_url), DayLoad(DAY, scored(meters=3).with_columns(value_raw=pl.lit(None, pl.Utf8)),
                                                           no_rejected(), no_revisions()))  # compared in PostgreSQL
    assert all_match()
    back = load(database_url, scored(meters=3), "two")
    revalued = pl.col("meter_id").eq("SM-2") & pl.col("reading_ts").dt.hour().eq(3)
    hostile = "7|5 \u202e☃ " + "9" * 500  # the separator, a bidi override, a snowman, a long text
    changed = scored(meters=3).with_columns(value_raw=pl.when(revalued).then(pl.lit(hostile)).otherwise("value_raw"))
    assert load(database_url, changed, "three", PreviousLoad("two", back.digest)).readings_copied == 4
    assert all_match()


def test_same_keys_compare_row_by_row_as_a_join_would():
    """The aligned path (same keys in the same order) finds what the key join finds."""
    readings = scored(meters=5)
    before = row_digest(readings, ["value_raw", "quality_score"])
    hit = (pl.int_range(pl.len()) % 37) == 0
    now = readings.with_columns(quality_score=pl.when(hit).then(pl.lit(1, pl.Int32)).otherwise("quality_score"))
    aligned = changes_since(before, now, row_digest(now, ["value_raw", "quality_score"]))
    joined = changes_since(before.reverse(), now, row_digest(now, ["value_raw", "quality_score"]))  # keys not aligned
    assert aligned.updates.equals(joined.updates) and aligned.unchanged == joined.unchanged == 480 - 13
    assert aligned.inserts.height == joined.inserts.height == 0
    assert aligned.deleted_keys.height == joined.deleted_keys.height == 0


def test_readings_only_gained_have_nothing_gone_and_a_lost_one_is_gone():
    """A filling day: the previous readings plus new meters' (nothing deleted); then one lost."""
    before = scored(meters=3)
    digest_before = row_digest(before, ["value_raw", "quality_score"])
    now = pl.concat([before, scored(meters=5).filter(pl.col("meter_id").is_in(["SM-4", "SM-5"]))]).sort(
        "meter_id", "reading_ts")
    gained = changes_since(digest_before, now, row_digest(now, ["value_raw", "quality_score"]))
    assert (gained.inserts.height, gained.updates.height, gained.deleted_keys.height) == (192, 0, 0)
    assert set(gained.inserts["meter_id"]) == {"SM-4", "SM-5"}
    lost = now.filter(pl.int_range(pl.len()) != 5)
    changes = changes_since(digest_before, lost, row_digest(lost, ["value_raw", "quality_score"]))
    assert changes.deleted_keys.rows() == [now.select("meter_id", "reading_ts").row(5)]
    assert changes.inserts.height == 192



def test_the_load_commits_only_once_its_digest_is_stored(database_url):
    """The digest is uploaded while PostgreSQL loads; failing to store it fails the load before it
    commits, so day_loads never names a digest that is not there (and the rows are as before)."""
    first = load(database_url, scored(meters=2), "one")
    before = row_versions(database_url)
    storing = []

    def refuse(part: int, digest: pl.DataFrame) -> None:
        storing.append(digest.height)
        raise ConnectionError("the store is down")

    with pytest.raises(ConnectionError):
        load_partition(OperationalStore(database_url), DayLoad(DAY, scored(meters=3), no_rejected(), no_revisions(),
                                                               previous=PreviousLoad("one", first.digest), digest_name="two",
                                                               keep_digest=refuse))
    assert storing == [3 * 96]
    assert fetch_previous_load_name(OperationalStore(database_url), DAY) == "one"
    assert row_versions(database_url) == before


def test_a_small_reload_leaves_the_statistics_to_autovacuum_and_a_large_one_analyzes(database_url):
    """ANALYZE took 0.5–0.7 s of every run of a filling day: only a load that changes more than
    half of the partition runs it; a smaller change is autovacuum's (switched off here, so the
    planner's row estimate shows which ANALYZE ran)."""
    first = load(database_url, scored(meters=4), "one")  # a new partition: frozen and analyzed

    def estimated_rows() -> float:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT reltuples FROM pg_class WHERE relname = %s",
                                (f"meter_readings_p{DAY:%Y%m%d}",)).fetchone()[0]

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE meter_readings_p{DAY:%Y%m%d} SET (autovacuum_enabled = false)")
    assert estimated_rows() == 4 * 96
    second = load(database_url, scored(meters=5), "two", PreviousLoad("one", first.digest))  # a fifth new
    assert second.inserted == 96 and estimated_rows() == 4 * 96
    third = load(database_url, scored(meters=12), "three", PreviousLoad("two", second.digest))  # 7 of 12 new
    assert third.inserted == 7 * 96 and estimated_rows() == 12 * 96

# A day's readings as (meter, slot) → score, before and after: meters revised, thinned out,
# filled up, dropped and added, in any mix.
_days = st.dictionaries(st.tuples(st.integers(1, 6), st.integers(0, 7)), st.integers(0, 3), max_size=48)


@given(_days, _days)
@settings(max_examples=150, deadline=None)
def test_any_change_is_found_as_comparing_every_reading_would(before_scores, now_scores):
    """Meters are compared by a summary first, then only differing meters reading by reading:
    the result is what comparing each reading's key and content finds, reading for reading."""
    grid = scored(meters=6, slots=8)

    def day(scores: dict) -> pl.DataFrame:
        kept = pl.DataFrame([(f"SM-{m}", s, v) for (m, s), v in scores.items()], orient="row",
                            schema={"meter_id": pl.Utf8, "slot": pl.Int64, "score": pl.Int32})
        slots = grid.with_columns(slot=pl.col("source_line") % 1000 - 2)
        return (slots.join(kept, on=["meter_id", "slot"]).with_columns(quality_score=pl.col("score"))
                .drop("slot", "score").sort("meter_id", "reading_ts"))

    before, now = day(before_scores), day(now_scores)
    columns = ["value_raw", "quality_score"]
    changes = changes_since(row_digest(before, columns), now, row_digest(now, columns))

    def keyed(frame: pl.DataFrame) -> dict:
        return {(m, ts): score for m, ts, score in frame.select("meter_id", "reading_ts", "quality_score").rows()}

    old, new = keyed(before), keyed(now)
    assert set(keyed(changes.inserts)) == new.keys() - old.keys()
    assert set(keyed(changes.updates)) == {k for k in new.keys() & old.keys() if new[k] != old[k]}
    assert set(changes.deleted_keys.rows()) == old.keys() - new.keys()
    assert changes.unchanged == sum(1 for k in new.keys() & old.keys() if new[k] == old[k])


def test_a_digest_left_by_a_failed_load_that_cannot_be_removed_is_named_in_the_log():
    """The store being down is the likely reason a load failed: its digest then stays as litter,
    and the warning names the object (it used to be swallowed without a word)."""
    import socket
    from types import SimpleNamespace

    import boto3
    from botocore.config import Config

    from greenstream_dagster.defs.stores.assets import _forget_digest
    from greenstream_dagster.storage.bucket import Bucket

    with socket.socket() as probe:  # a port nothing listens on: S3 is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="x",
                          aws_secret_access_key="x", region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))

    warnings: list[str] = []
    _forget_digest(Bucket(client, "greenstream"), DAY, "abc", SimpleNamespace(warning=warnings.append))
    assert len(warnings) == 1
    assert f"staging/meter_readings/date={DAY.isoformat()}/digest-abc.parquet" in warnings[0]


def test_new_readings_copied_into_the_partition_keep_every_kind_of_value(database_url):
    """The readings a digest calls new are encoded by the load itself (COPY BINARY inside its
    transaction): nulls, empty and several-element error lists, hostile text, extreme numbers
    and times at both ends of the day arrive exactly as given."""
    first = load(database_url, scored(meters=2), "one")
    odd = scored(meters=4).filter(pl.col("meter_id").is_in(["SM-3", "SM-4"])).with_columns(
        value_raw=pl.when(pl.col("reading_ts").dt.hour() == 1).then(None).otherwise(pl.lit("7,5 \u202e☃ \"'\\")),
        unit_raw=pl.when(pl.col("reading_ts").dt.hour() == 1).then(None).otherwise(pl.col("unit_raw")),
        value_kw=pl.when(pl.col("reading_ts").dt.hour() == 1).then(None).otherwise(pl.lit(-1.7976931348623157e308)),
        validation_errors=pl.when(pl.col("meter_id") == "SM-3")
        .then(pl.lit(["INVALID_VALUE", "UNIT_NOT_ALLOWED"], dtype=pl.List(pl.Utf8)))
        .otherwise(pl.lit([], dtype=pl.List(pl.Utf8))),
        out_of_range=pl.lit(True), is_spike=pl.col("meter_id") == "SM-4",
        quality_score=pl.lit(0, pl.Int32), quality_grade=pl.lit("F"),
        source_key=pl.lit("raw-data/ünïcode/ key with spaces.csv"), source_line=pl.lit(2**62, pl.Int64),
    )
    both = pl.concat([scored(meters=2), odd])
    again = load(database_url, both, "two", PreviousLoad("one", first.digest))
    assert (again.readings_copied, again.inserted, again.updated) == (192, 192, 0)
    assert stored(database_url).equals(both.sort("meter_id", "reading_ts"))
    assert content_ids(database_url) and all(stored_id == want for stored_id, want in content_ids(database_url))
