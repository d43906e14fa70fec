"""estimated_readings in PostgreSQL (SPEC §3b, §5): loaded with the day, idempotent, withdrawn, retained."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import psycopg

from greenstream_dagster.rules.schemas import ESTIMATE_COLUMNS
from greenstream_dagster.storage.operational.load import DayLoad, load_partition
from greenstream_dagster.storage.operational.retention import apply_retention
from greenstream_dagster.storage.operational.store import OperationalStore
from greenstream_dagster_tests.operational_frames import DAY, day_start, no_rejected, no_revisions, scored


def slot(n: int, day=DAY):
    return day_start(day) + timedelta(minutes=15 * n)


def estimates(*rows, day=DAY) -> pl.DataFrame:
    """(meter_id, slot, value_kw, from slot, to slot) → ESTIMATE_COLUMNS."""
    return pl.DataFrame(
        [(day, m, slot(s, day), kw, "LINEAR", slot(a, day), slot(b, day)) for m, s, kw, a, b in rows],
        schema=ESTIMATE_COLUMNS, orient="row")


def readings_without(*missing: tuple[str, int], day=DAY) -> pl.DataFrame:
    frame = scored(day, meters=2)
    gone = pl.DataFrame({"meter_id": [m for m, _ in missing], "reading_ts": [slot(s, day) for _, s in missing]},
                        schema={"meter_id": pl.Utf8, "reading_ts": pl.Datetime("us", "UTC")})
    return frame.join(gone, on=["meter_id", "reading_ts"], how="anti")


def stored(url: str, day=DAY) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT meter_id, slot_ts, value_kw, method, from_reading_ts, to_reading_ts, estimated_at, xmin::text "
            "FROM estimated_readings WHERE partition_date = %s ORDER BY meter_id, slot_ts", (day,)).fetchall()


def test_estimates_are_stored_apart_from_the_readings(database_url):
    readings = readings_without(("SM-1", 10), ("SM-1", 11))
    result = load_partition(OperationalStore(database_url), DayLoad(
        DAY, readings, no_rejected(), no_revisions(),
        estimates=estimates(("SM-1", 10, 0.11, 9, 12), ("SM-1", 11, 0.111, 9, 12))))
    assert (result.estimate_rows, result.estimates_inserted, result.estimates_withdrawn) == (2, 2, 0)
    rows = stored(database_url)
    assert [(m, ts, kw, method, a, b) for m, ts, kw, method, a, b, _, _ in rows] == [
        ("SM-1", slot(10), 0.11, "LINEAR", slot(9), slot(12)), ("SM-1", slot(11), 0.111, "LINEAR", slot(9), slot(12))]
    with psycopg.connect(database_url) as conn:
        in_readings = conn.execute("SELECT count(*) FROM meter_readings WHERE meter_id = 'SM-1' "
                                   "AND reading_ts IN (%s, %s)", (slot(10), slot(11))).fetchone()[0]
    assert in_readings == 0 and result.inserted == readings.height


def test_an_identical_reload_changes_no_estimate_and_keeps_estimated_at(database_url):
    readings = readings_without(("SM-2", 40))
    day_estimates = estimates(("SM-2", 40, 0.24, 39, 41))
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions(), estimates=day_estimates))
    before = stored(database_url)
    again = load_partition(OperationalStore(database_url), DayLoad(DAY, readings, no_rejected(), no_revisions(), estimates=day_estimates))
    assert (again.estimates_inserted, again.estimates_updated, again.estimates_withdrawn, again.changed) == (0, 0, 0, 0)
    assert stored(database_url) == before  # same xmin and estimated_at: not written again


def test_a_slot_filled_late_withdraws_its_estimate_and_a_changed_bound_recomputes(database_url):
    first = estimates(("SM-1", 10, 0.11, 9, 12), ("SM-1", 11, 0.111, 9, 12), ("SM-2", 50, 0.25, 49, 51))
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings_without(("SM-1", 10), ("SM-1", 11), ("SM-2", 50)),
                                                           no_rejected(), no_revisions(), estimates=first))
    kept_before = {r[1]: r for r in stored(database_url) if r[0] == "SM-2"}
    # A late file brings SM-1's 10:00 reading (withdrawn), so 11's run is re-computed from other bounds.
    later = estimates(("SM-1", 11, 0.1115, 10, 12), ("SM-2", 50, 0.25, 49, 51))
    result = load_partition(OperationalStore(database_url), DayLoad(DAY, readings_without(("SM-1", 11), ("SM-2", 50)),
                                                                    no_rejected(), no_revisions(), estimates=later))
    assert (result.estimates_withdrawn, result.estimates_updated, result.estimates_inserted) == (1, 1, 0)
    rows = stored(database_url)
    assert [(m, ts, kw, a) for m, ts, kw, _, a, _, _, _ in rows] == [
        ("SM-1", slot(11), 0.1115, slot(10)), ("SM-2", slot(50), 0.25, slot(49))]
    assert rows[1] == kept_before[slot(50)]  # the untouched estimate was not written


def test_no_estimates_leave_the_table_empty(database_url):
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings_without(("SM-1", 10)), no_rejected(), no_revisions(),
                                                           estimates=estimates()))
    assert stored(database_url) == []


def test_retention_drops_the_estimates_partition_with_the_day(database_url):
    old, kept = DAY - timedelta(days=91), DAY - timedelta(days=3)
    for day in (old, kept):
        load_partition(OperationalStore(database_url), DayLoad(day, readings_without(("SM-1", 5), day=day), no_rejected(), no_revisions(),
                                                               estimates=estimates(("SM-1", 5, 0.105, 4, 6), day=day)))
    dropped = apply_retention(database_url, DAY, retention_days=90)
    assert f"estimated_readings_p{old:%Y%m%d}" in dropped
    assert f"estimated_readings_p{kept:%Y%m%d}" not in dropped
    assert stored(database_url, old) == [] and len(stored(database_url, kept)) == 1
