"""SPEC §5: the lake's meter_daily aggregates."""

from datetime import date

import pytest

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.meter_daily import meter_daily
from greenstream_dagster.rules.schemas import MeterDailySchema
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster_tests.builders import HEADER, window_readings

D = date(2024, 4, 15)
CONFIG = RulesConfig(partitions_start=D)


def test_meter_daily_aggregates_usable_readings_and_grades():
    text = (
        "SM-1,2024-04-15T10:00:00Z,2000,W\n"  # usable, off-peak
        "SM-1,2024-04-15T17:00:00Z,4,kW\n"  # usable, peak
        "SM-1,2024-04-15T18:00:00Z,500,kW\n"  # out of range: not usable
        "SM-1,2024-04-15T19:00:00Z,abc,kW\n"  # invalid: not usable
        "SM-2,2024-04-15T10:00:00Z,1,kW\n"
    )
    scored = score_partition(window_readings({D: text}, CONFIG), D, CONFIG)
    daily = meter_daily(scored.readings, scored.meters, D, scored.estimates)
    MeterDailySchema.validate(daily)
    row = daily.row(0, named=True)
    assert row["meter_id"] == "SM-1" and row["date"] == D
    assert (row["readings"], row["usable_readings"]) == (4, 2)
    assert row["energy_kwh"] == pytest.approx((2.0 + 4.0) * 0.25)
    assert row["peak_kwh"] == pytest.approx(4.0 * 0.25)
    assert (row["max_kw"], row["mean_kw"]) == (4.0, 3.0)
    assert row["variance_kw2"] == pytest.approx(2.0)
    # Each meter has at most 4 of 96 slots: a gap, so unreliable; scores 90, 90, 70, 40.
    assert row["gap"] is True and row["reliable"] is False
    assert (row["grade_a"], row["grade_b"], row["grade_c"], row["grade_f"]) == (2, 0, 1, 1)
    assert row["mean_score"] == pytest.approx((90 + 90 + 70 + 40) / 4)
    assert daily["meter_id"].to_list() == ["SM-1", "SM-2"]
    assert (row["estimated_slots"], row["energy_kwh_estimated"]) == (0, 0.0)


def test_estimates_are_counted_apart_and_never_in_energy_kwh():
    # 10:00 → 2 kW and 11:00 → 6 kW with 10:15, 10:30, 10:45 missing: estimates 3, 4, 5 kW.
    text = "".join(f"SM-1,2024-04-15T{h:02d}:{m:02d}:00Z,{2 if (h, m) == (10, 0) else 6 if (h, m) == (11, 0) else 1},kW\n"
                   for h in range(24) for m in (0, 15, 30, 45) if not (h == 10 and m > 0))
    scored = score_partition(window_readings({D: text}, CONFIG), D, CONFIG)
    row = meter_daily(scored.readings, scored.meters, D, scored.estimates).row(0, named=True)
    assert row["readings"] == 93 and row["energy_kwh"] == pytest.approx((91 * 1 + 2 + 6) * 0.25)
    assert row["estimated_slots"] == 3 and row["energy_kwh_estimated"] == pytest.approx((3 + 4 + 5) * 0.25)


def test_meter_without_usable_readings_has_null_statistics():
    scored = score_partition(window_readings({D: "SM-1,2024-04-15T10:00:00Z,,kW\n"}, CONFIG), D, CONFIG)
    row = meter_daily(scored.readings, scored.meters, D, scored.estimates).row(0, named=True)
    assert row["usable_readings"] == 0 and row["energy_kwh"] == 0.0
    assert row["max_kw"] is None and row["variance_kw2"] is None
    assert HEADER  # builders' header is what window_readings prepends


def test_meter_daily_does_not_depend_on_the_order_of_the_readings():
    """A re-run that stages the same readings in another order (a re-done meter appended, say)
    must give the same bits, or the lake day would be rewritten for nothing (SPEC §5)."""
    import random

    import polars as pl

    rng = random.Random(7)
    text = "".join(f"SM-{m},2024-04-15T{slot // 4:02d}:{slot % 4 * 15:02d}:00Z,{rng.uniform(0, 9):.4f},kW\n"
                   for m in range(1, 4) for slot in range(96))
    scored = score_partition(window_readings({D: text}, CONFIG), D, CONFIG)
    daily = meter_daily(scored.readings, scored.meters, D, scored.estimates)
    for seed in range(20):
        shuffled = scored.readings.sample(fraction=1.0, shuffle=True, seed=seed)
        again = meter_daily(shuffled, scored.meters, D, scored.estimates)
        assert again.equals(daily), seed
        assert again.select(pl.col("energy_kwh", "mean_kw").hash()).equals(daily.select(pl.col("energy_kwh", "mean_kw").hash()))
