"""The fleet in PostgreSQL (SPEC §3a, §5): presence, registry and silent rows stored idempotently,
the registry equal to its definition over the stored presence, and day partitions retained like
meter_readings."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import psycopg

from greenstream_dagster.rules.meter_registry import PRESENCE_COLUMNS, registry_from_presence
from greenstream_dagster.rules.silent_meters import silent_meters
from greenstream_dagster.storage.operational.fleet import (
    fetch_lookback,
    fetch_registry,
    fetch_silent_days,
    record_day_presence,
    store_silent_meters,
)
from greenstream_dagster.storage.operational.retention import apply_retention

D0 = date(2024, 3, 1)


def presence(day: date, meters: list[str], hour: int = 23) -> pl.DataFrame:
    ts = datetime(day.year, day.month, day.day, hour, 45, tzinfo=timezone.utc)
    return pl.DataFrame({"meter_id": meters, "partition_date": [day] * len(meters),
                         "last_reading_ts": [ts] * len(meters)}, schema=PRESENCE_COLUMNS)


def stored_presence(url: str) -> pl.DataFrame:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT meter_id, partition_date, last_reading_ts FROM meter_presence").fetchall()
    return pl.DataFrame(rows, schema=PRESENCE_COLUMNS, orient="row")


def test_the_stored_registry_is_its_definition_over_the_stored_presence(database_url):
    days = {D0 + timedelta(days=k): [f"SM-{i}" for i in range(6) if (i + k) % 3] for k in range(5)}
    for day in [*days][::-1]:  # out of order, as a backfill may run
        record_day_presence(database_url, day, presence(day, days[day]))
    # A re-run of a day without two of its meters (their landing object was removed on purpose),
    # and a re-run with a later last reading.
    record_day_presence(database_url, D0 + timedelta(days=4), presence(D0 + timedelta(days=4), ["SM-0"]))
    record_day_presence(database_url, D0, presence(D0, days[D0], hour=22))
    expected = registry_from_presence(stored_presence(database_url).lazy()).collect().sort("meter_id")
    assert fetch_registry(database_url).equals(expected)


def test_re_recording_a_day_changes_zero_rows(database_url):
    record_day_presence(database_url, D0, presence(D0, ["SM-1", "SM-2"]))
    again = record_day_presence(database_url, D0, presence(D0, ["SM-1", "SM-2"]))
    assert (again.changed, again.new_meters, again.registry_meters) == (0, 2, 2)
    silent = pl.DataFrame({"partition_date": [D0], "meter_id": ["SM-9"], "last_seen": [D0 - timedelta(days=2)],
                           "silent_days": [2]})
    assert store_silent_meters(database_url, D0, silent) == 1
    assert store_silent_meters(database_url, D0, silent) == 0
    assert store_silent_meters(database_url, D0, silent.clear()) == 1  # the meter came back: its row goes
    assert fetch_silent_days(database_url, "SM-9").is_empty()


def test_the_lookback_read_feeds_the_silent_rule(database_url):
    for k, meters in enumerate([["SM-1", "SM-2", "SM-3"], ["SM-1", "SM-2"], ["SM-1"]]):
        record_day_presence(database_url, D0 + timedelta(days=k), presence(D0 + timedelta(days=k), meters))
    day = D0 + timedelta(days=3)
    record_day_presence(database_url, day, presence(day, ["SM-1", "SM-4"]))
    stored = fetch_lookback(database_url, day, 30, D0)
    assert stored.day_recorded and stored.missing_days == []
    assert stored.new_meters["meter_id"].to_list() == ["SM-4"]
    rows = silent_meters(stored.last_seen.lazy(), stored.day_meters.lazy(), day, 30)
    assert rows.select("meter_id", "silent_days").rows() == [("SM-3", 3), ("SM-2", 2)]
    later = fetch_lookback(database_url, day + timedelta(days=2), 30, D0)
    assert later.missing_days == [day + timedelta(days=1)] and not later.day_recorded


def test_retention_drops_the_fleets_day_partitions_and_keeps_the_registry(database_url):
    today = date(2024, 9, 1)
    old, kept = today - timedelta(days=91), today - timedelta(days=10)
    for day in (old, kept):
        record_day_presence(database_url, day, presence(day, ["SM-1"]))
        store_silent_meters(database_url, day, pl.DataFrame({
            "partition_date": [day], "meter_id": ["SM-2"], "last_seen": [day - timedelta(days=1)], "silent_days": [1]}))
    dropped = apply_retention(database_url, today, retention_days=90)
    assert dropped == [f"meter_presence_p{old:%Y%m%d}", f"silent_meters_p{old:%Y%m%d}"]
    assert fetch_silent_days(database_url, "SM-2")["partition_date"].to_list() == [kept]
    (row,) = fetch_registry(database_url).to_dicts()
    assert (row["first_seen"], row["last_seen"], row["days_seen"]) == (old, kept, 2)
