"""Meter registry (SPEC §3a): a pure function of the materialized days, kept up to date day by day."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import polars as pl

from greenstream_dagster.rules.meter_registry import (
    PRESENCE_COLUMNS,
    REGISTRY_COLUMNS,
    day_presence,
    merge_day,
    registry_from_presence,
    removed_meters,
)

D0 = date(2024, 4, 1)


def presence(day: date, meters: dict[str, int]) -> pl.DataFrame:
    """meter -> minute of the day of its last reading."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return pl.DataFrame(
        {"meter_id": list(meters), "partition_date": [day] * len(meters),
         "last_reading_ts": [start + timedelta(minutes=m) for m in meters.values()]},
        schema=PRESENCE_COLUMNS)


def empty_registry() -> pl.DataFrame:
    return pl.DataFrame(schema=REGISTRY_COLUMNS)


def apply(registry: pl.DataFrame, stored: dict[date, pl.DataFrame], day: date, new: pl.DataFrame) -> pl.DataFrame:
    """What the store does on a materialization of `day`: merge, recompute removed meters, keep the rest."""
    before = stored.get(day, pl.DataFrame(schema=PRESENCE_COLUMNS))
    merged = merge_day(registry, before, new, day)
    stored[day] = new
    gone = removed_meters(before, new)
    remaining = pl.concat(list(stored.values())).filter(pl.col("meter_id").is_in(gone.implode()))
    recomputed = registry_from_presence(remaining.lazy()).collect()
    touched = pl.concat([merged["meter_id"], gone])
    return pl.concat([registry.filter(~pl.col("meter_id").is_in(touched.implode())), merged, recomputed])


def test_day_presence_takes_each_meters_last_reading_of_the_day():
    ts = datetime(2024, 4, 1, 23, 45, tzinfo=timezone.utc)
    stats = pl.DataFrame({"meter_id": ["SM-1", "SM-2"], "partition_date": [D0, D0],
                          "last_reading_ts": [ts, ts - timedelta(hours=1)]})
    frame = day_presence(stats, D0).sort("meter_id")
    assert frame.rows() == [("SM-1", D0, ts), ("SM-2", D0, ts - timedelta(hours=1))]


def test_registry_from_presence_first_last_days_and_last_reading():
    days = pl.concat([presence(D0, {"SM-1": 10}), presence(D0 + timedelta(days=3), {"SM-1": 20, "SM-2": 5})])
    rows = {r["meter_id"]: r for r in registry_from_presence(days.lazy()).collect().to_dicts()}
    assert (rows["SM-1"]["first_seen"], rows["SM-1"]["last_seen"], rows["SM-1"]["days_seen"]) == (
        D0, D0 + timedelta(days=3), 2)
    assert rows["SM-1"]["last_reading_ts"] == datetime(2024, 4, 4, 0, 20, tzinfo=timezone.utc)
    assert (rows["SM-2"]["first_seen"], rows["SM-2"]["days_seen"]) == (D0 + timedelta(days=3), 1)


def test_re_running_an_old_day_never_moves_last_seen_back():
    stored: dict = {}
    registry = apply(empty_registry(), stored, D0 + timedelta(days=5), presence(D0 + timedelta(days=5), {"SM-1": 30}))
    registry = apply(registry, stored, D0, presence(D0, {"SM-1": 90}))
    registry = apply(registry, stored, D0, presence(D0, {"SM-1": 95}))  # a re-run with a later reading
    (row,) = registry.to_dicts()
    assert (row["first_seen"], row["last_seen"], row["days_seen"]) == (D0, D0 + timedelta(days=5), 2)
    assert row["last_reading_ts"] == datetime(2024, 4, 6, 0, 30, tzinfo=timezone.utc)


def test_incremental_merges_equal_the_registry_of_all_presence():
    """Random materializations and re-runs in any order, including meters removed from a re-run day."""
    rng = random.Random(7)
    meters = [f"SM-{i}" for i in range(12)]
    stored: dict = {}
    registry = empty_registry()
    for _ in range(60):
        day = D0 + timedelta(days=rng.randrange(10))
        chosen = {m: rng.randrange(1, 1440) for m in meters if rng.random() < 0.5}
        registry = apply(registry, stored, day, presence(day, chosen))
        expected = registry_from_presence(pl.concat(list(stored.values())).lazy()).collect()
        assert registry.sort("meter_id").equals(expected.sort("meter_id"))
