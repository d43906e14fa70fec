"""Silent meters (SPEC §3a): seen in the look-back D-L..D-1, not on D."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from greenstream_dagster.rules.silent_meters import fleet_day, silent_meters

D = date(2024, 5, 31)


def seen(rows: list[tuple[str, int]]) -> pl.LazyFrame:
    """(meter, days before D) presence rows."""
    return pl.DataFrame({"meter_id": [m for m, _ in rows], "partition_date": [D - timedelta(days=k) for _, k in rows]},
                        schema={"meter_id": pl.Utf8, "partition_date": pl.Date}).lazy()


def meters(*ids: str) -> pl.LazyFrame:
    return pl.DataFrame({"meter_id": list(ids)}, schema={"meter_id": pl.Utf8}).lazy()


def test_a_meter_seen_in_the_lookback_and_not_today_is_silent_since_its_last_day():
    lookback = seen([("SM-1", 3), ("SM-1", 7), ("SM-2", 1), ("SM-3", 1)])
    rows = silent_meters(lookback, meters("SM-2"), D, 30).to_dicts()
    assert [(r["meter_id"], r["last_seen"], r["silent_days"]) for r in rows] == [
        ("SM-1", D - timedelta(days=3), 3), ("SM-3", D - timedelta(days=1), 1)]
    assert all(r["partition_date"] == D for r in rows)


def test_the_lookback_is_d_minus_l_to_d_minus_1():
    lookback = seen([("SM-edge", 30), ("SM-old", 31), ("SM-today", 0)])
    assert silent_meters(lookback, meters(), D, 30)["meter_id"].to_list() == ["SM-edge"]
    assert silent_meters(lookback, meters(), D, 29).is_empty()


def test_an_empty_day_makes_every_meter_of_the_lookback_silent():
    lookback = seen([(f"SM-{i}", 1 + i % 5) for i in range(20)])
    assert silent_meters(lookback, meters(), D, 30).height == 20


def test_a_meter_never_seen_before_is_new_not_silent():
    assert silent_meters(seen([]), meters("SM-9"), D, 30).is_empty()


def test_fleet_counts_new_silent_and_returning_meters():
    # SM-1 reports daily; SM-2 was silent yesterday and reports today (returns); SM-3 goes silent;
    # SM-4 is new today.
    lookback = seen([("SM-1", 1), ("SM-1", 2), ("SM-2", 2), ("SM-2", 5), ("SM-3", 1)])
    today = meters("SM-1", "SM-2", "SM-4")
    silent = silent_meters(lookback, today, D, 30)
    fleet = fleet_day(lookback, today, silent, meters("SM-4"), D, 30)
    assert (fleet.known_fleet, fleet.reporting, fleet.silent, fleet.new, fleet.returning) == (3, 3, 1, 1, 1)
    assert fleet.longest_silent == ["SM-3"]
    assert fleet.silent_share == 1 / 3
    assert fleet.exceeds(0.3) and not fleet.exceeds(0.34)


def test_longest_silent_first():
    lookback = seen([("SM-a", 2), ("SM-b", 9), ("SM-c", 4)])
    assert silent_meters(lookback, meters(), D, 30)["meter_id"].to_list() == ["SM-b", "SM-c", "SM-a"]
