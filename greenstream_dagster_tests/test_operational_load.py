"""Loading a partition day into PostgreSQL (SPEC §5): idempotent, exact, one day at a time."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import psycopg
import pytest

from greenstream_dagster.storage.operational.load import DayLoad, bulk_copy, load_partition
from greenstream_dagster.storage.operational.store import OperationalStore
from greenstream_dagster_tests.operational_frames import (
    DAY,
    no_rejected,
    no_revisions,
    rejected,
    revisions,
    scored,
)

CONTRACT = list(scored().columns)


def stored(url: str, day=DAY) -> pl.DataFrame:
    """The day's meter_readings rows in the frame contract, by key."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(CONTRACT)} FROM meter_readings WHERE partition_date = %s "
            "ORDER BY meter_id, reading_ts", (day,)
        ).fetchall()
    return pl.DataFrame(rows, schema=scored().schema, orient="row")


def row_versions(url: str, day=DAY) -> dict[tuple, tuple]:
    """(meter_id, reading_ts) → (xmin, loaded_at): a row that was written again gets a new xmin."""
    with psycopg.connect(url) as conn:
        return {
            (m, ts): (xmin, loaded_at)
            for m, ts, xmin, loaded_at in conn.execute(
                "SELECT meter_id, reading_ts, xmin::text, loaded_at FROM meter_readings WHERE partition_date = %s",
                (day,),
            )
        }


def test_a_first_load_stores_every_reading(database_url):
    readings = scored(meters=3)
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()))
    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (288, 0, 0, 0)
    assert result.rows == 288
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts"))


def test_loading_the_same_partition_twice_changes_nothing(database_url):
    readings = scored(meters=3)
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings, rejected(), revisions()))
    before = row_versions(database_url)
    again = load_partition(OperationalStore(database_url), DayLoad(DAY, readings, rejected(), revisions()))
    assert again.changed == 0
    assert (again.inserted, again.updated, again.unchanged, again.deleted) == (0, 0, 288, 0)
    assert row_versions(database_url) == before  # not even rewritten with the same values
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts"))


def test_a_re_score_updates_exactly_the_rows_that_differ(database_url):
    readings = scored(meters=3)
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()))
    before = row_versions(database_url)
    hit = pl.col("meter_id").eq("SM-2") & pl.col("reading_ts").dt.hour().eq(18)  # 4 readings
    rescored = readings.with_columns(
        is_spike=pl.when(hit).then(True).otherwise(pl.col("is_spike")),
        quality_score=pl.when(hit).then(pl.lit(90, pl.Int32)).otherwise(pl.col("quality_score")),
    )
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, rescored, no_rejected(), no_revisions()))
    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (0, 4, 284, 0)
    after = row_versions(database_url)
    changed_keys = {k for k in after if after[k] != before[k]}
    assert changed_keys == {(m, ts) for m, ts in rescored.filter(hit).select("meter_id", "reading_ts").rows()}
    assert stored(database_url).equals(rescored.sort("meter_id", "reading_ts"))


def test_every_column_takes_part_in_the_comparison(database_url):
    readings = scored(meters=1, slots=len(CONTRACT))
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()))
    changes = {  # one value column changed on each row, nulls and lists included
        "value_raw": pl.lit(None, pl.Utf8), "unit_raw": pl.lit("kW"),
        "value_kw": pl.lit(None, pl.Float64), "tariff_period": pl.lit("PEAK"), "season": pl.lit("WINTER"),
        "validation_errors": pl.lit(["INVALID_VALUE"], pl.List(pl.Utf8)), "out_of_range": pl.lit(True),
        "revised": pl.lit(True), "is_spike": pl.lit(True), "meter_stuck": pl.lit(True), "meter_gap": pl.lit(True),
        "quality_score": pl.lit(40, pl.Int32), "quality_grade": pl.lit("F"),
        "source_key": pl.lit("raw-data/2024-04-15/late.csv"), "source_line": pl.lit(99, pl.Int64),
    }
    slot = pl.int_range(pl.len())
    modified = readings.with_columns(
        pl.when(slot == i).then(value).otherwise(pl.col(name)).alias(name)
        for i, (name, value) in enumerate(changes.items())
    )
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, modified, no_rejected(), no_revisions()))
    assert result.updated == len(changes)
    assert stored(database_url).equals(modified.sort("meter_id", "reading_ts"))


def test_readings_no_longer_delivered_are_deleted_and_new_ones_inserted(database_url):
    load_partition(OperationalStore(database_url), DayLoad(DAY, scored(meters=3), no_rejected(), no_revisions()))
    smaller = scored(meters=2)
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, smaller, no_rejected(), no_revisions()))
    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (0, 0, 192, 96)
    bigger = scored(meters=4)
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, bigger, no_rejected(), no_revisions()))
    assert (result.inserted, result.deleted) == (192, 0)
    assert stored(database_url).equals(bigger.sort("meter_id", "reading_ts"))


def test_revisions_are_stored_once_however_often_the_day_is_loaded(database_url):
    audit = revisions(record_ids=("a" * 64, "c" * 64))
    for _ in range(3):
        result = load_partition(OperationalStore(database_url), DayLoad(DAY, scored(), no_rejected(), audit))
    assert (result.revision_rows, result.revisions_changed) == (2, 0)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT record_id) FROM reading_revisions").fetchone() == (2, 2)
    fewer = load_partition(OperationalStore(database_url),
                           DayLoad(DAY, scored(), no_rejected(), audit.filter(pl.col("record_id") == "c" * 64)))
    assert (fewer.revision_rows, fewer.revisions_changed) == (1, 1)


def test_rejected_rows_are_stored_and_replaced_with_the_day(database_url):
    first = load_partition(OperationalStore(database_url), DayLoad(DAY, scored(), rejected(lines=(2, 7)), no_revisions()))
    assert (first.rejected_rows, first.rejected_changed) == (2, 2)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT partition_date, source_key, source_line, raw_line, reason "
                            "FROM rejected_readings ORDER BY source_line").fetchall()
    assert rows == list(rejected(lines=(2, 7)).rows())
    again = load_partition(OperationalStore(database_url), DayLoad(DAY, scored(), rejected(lines=(2, 7)), no_revisions()))
    assert again.rejected_changed == 0
    other = load_partition(OperationalStore(database_url),
                           DayLoad(DAY, scored(), rejected(lines=(7, 9), reason="MALFORMED_ROW"), no_revisions()))
    assert (other.rejected_rows, other.rejected_changed) == (2, 3)  # 1 gone, 1 new, 1 new reason
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT source_line, reason FROM rejected_readings ORDER BY 1").fetchall() == [
            (7, "MALFORMED_ROW"), (9, "MALFORMED_ROW")]


def test_two_partition_days_are_independent(database_url):
    other_day = DAY + timedelta(days=1)
    load_partition(OperationalStore(database_url), DayLoad(DAY, scored(DAY, meters=2), rejected(DAY), revisions(DAY)))
    load_partition(OperationalStore(database_url), DayLoad(other_day, scored(other_day, meters=3), rejected(other_day), no_revisions()))
    untouched = row_versions(database_url, other_day)
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, scored(DAY, meters=1), no_rejected(), no_revisions()))
    assert (result.deleted, result.rejected_rows, result.revision_rows) == (96, 0, 0)
    assert row_versions(database_url, other_day) == untouched
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM rejected_readings WHERE partition_date = %s",
                            (other_day,)).fetchone() == (2,)


def test_a_day_without_readings_loads_empty(database_url):
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, scored(meters=0), rejected(), no_revisions()))
    assert (result.rows, result.rejected_rows) == (0, 2)


def test_a_re_load_is_copied_over_parallel_connections(database_url, monkeypatch):
    monkeypatch.setattr(bulk_copy, "_ROWS_PER_COPY_CONNECTION", 50)
    readings = scored(meters=5)
    first = load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()), copy_connections=3)
    again = load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()), copy_connections=3)
    assert (first.inserted, again.changed) == (480, 0)
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts"))


def test_a_first_load_derives_and_copies_its_readings_a_slice_at_a_time(database_url, monkeypatch):
    monkeypatch.setattr(bulk_copy, "_DERIVE_ROWS", 100)  # 480 readings: five slices, the last one short
    readings = scored(meters=5)
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()))
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts"))
    with psycopg.connect(database_url) as conn:  # every reading got its own content id
        assert conn.execute("SELECT count(DISTINCT record_id) FROM meter_readings").fetchone() == (480,)


def test_a_first_load_writes_its_day_once(database_url):
    """A day's first load fills a table made in its own transaction with frozen rows: on a server
    with wal_level=minimal (the embedded one) the rows are written to the table and nowhere else,
    neither to the WAL nor again by the VACUUM (FREEZE) after it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SHOW wal_level").fetchone() != ("minimal",):
            pytest.skip("the test server keeps a replica's WAL (wal_level is not minimal)")
        before = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        load_partition(OperationalStore(database_url), DayLoad(DAY, scored(meters=400), no_rejected(), no_revisions()))
        wal, size = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s), pg_total_relation_size(%s)",
            (before, f"meter_readings_p{DAY:%Y%m%d}")).fetchone()
    assert size > 8 * 2**20  # above wal_skip_threshold: a smaller table is logged whole at commit
    assert wal < size / 4


def test_the_load_is_one_transaction(database_url):
    load_partition(OperationalStore(database_url), DayLoad(DAY, scored(meters=2), rejected(), no_revisions()))
    before = stored(database_url)
    duplicated = pl.concat([scored(meters=3), scored(meters=3).head(1)])
    with pytest.raises(ValueError, match="meter_readings: the frame holds two rows with the same key"):
        load_partition(OperationalStore(database_url), DayLoad(DAY, duplicated, no_rejected(), no_revisions()))
    assert stored(database_url).equals(before)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM rejected_readings").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'load_staging'").fetchone() == (0,)


@pytest.mark.parametrize("first_load", [True, False])
def test_duplicate_interval_keys_are_refused(database_url, first_load):
    if not first_load:
        load_partition(OperationalStore(database_url), DayLoad(DAY, scored(), no_rejected(), no_revisions()))
    duplicated = pl.concat([scored(), scored().head(1)])  # identical copy of a stored row
    with pytest.raises(ValueError, match="meter_readings: the frame holds two rows with the same key"):
        load_partition(OperationalStore(database_url), DayLoad(DAY, duplicated, no_rejected(), no_revisions()))


def test_a_row_of_another_day_is_refused(database_url):
    with pytest.raises(ValueError, match=r"meter_readings: 384 row\(s\) have a partition_date other than"):
        load_partition(OperationalStore(database_url), DayLoad(DAY, scored(DAY + timedelta(days=1)), no_rejected(), no_revisions()))


def test_a_frame_with_a_wrong_dtype_is_refused_by_column_name(database_url):
    readings = scored().with_columns(pl.col("quality_score").cast(pl.Int64))
    with pytest.raises(ValueError, match="meter_readings.quality_score: expected dtype Int32"):
        load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions()))
