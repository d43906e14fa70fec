"""SPEC §3: stuck meters, erratic spikes, communication gaps and reliability, per meter and day D."""

from datetime import date, timedelta

import polars as pl
import pytest

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.fault_window import fault_window
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster_tests.builders import day_csv, window_readings

D = date(2024, 4, 15)
CONFIG = RulesConfig(partitions_start=date(2024, 1, 1))


def wavy(n, base=1.0, amplitude=0.5):
    """Varied but bounded load: no spike, no stuck day."""
    return [round(base + amplitude * ((i * 7) % 11) / 10, 3) for i in range(n)]


def meters_of(days, config=CONFIG, day=D):
    scored = score_partition(window_readings(days, config), day, config)
    return {row["meter_id"]: row for row in scored.meters.iter_rows(named=True)}, scored.readings.sort("meter_id", "reading_ts")


def full_week(meter="SM-1", days=7, last=D, values=None):
    return {last - timedelta(days=k): day_csv(meter, last - timedelta(days=k), values or wavy(96)) for k in range(days)}


# --- window -------------------------------------------------------------------------------

def test_window_is_seven_calendar_days_clipped_at_the_partitions_start():
    assert fault_window(D, CONFIG).days == 7
    assert fault_window(D, RulesConfig(partitions_start=D - timedelta(days=2))).days == 3
    assert fault_window(D, RulesConfig(partitions_start=D)).days == 1
    assert fault_window(D, RulesConfig(window_days=3)).first_day == D - timedelta(days=2)


# --- stuck ----------------------------------------------------------------------------------

def test_constant_day_with_48_usable_readings_is_stuck():
    meters, _ = meters_of({**full_week(days=6, last=D - timedelta(days=1)), D: day_csv("SM-1", D, [2.5] * 48)})
    assert meters["SM-1"]["stuck"] is True
    assert meters["SM-1"]["variance_kw2"] == 0.0


def test_stuck_needs_48_usable_readings():
    meters, _ = meters_of({D: day_csv("SM-1", D, [2.5] * 47)})
    assert meters["SM-1"]["stuck"] is False


def test_unusable_readings_do_not_count_towards_stuck():
    values = [2.5] * 47 + [250]  # the last is out of range: only 47 usable
    meters, _ = meters_of({D: day_csv("SM-1", D, values)})
    assert meters["SM-1"]["usable_readings"] == 47
    assert meters["SM-1"]["stuck"] is False


@pytest.mark.parametrize("low, high, stuck", [(1.0, 1.19, True), (1.0, 1.2, False)])
def test_stuck_threshold_on_sample_variance(low, high, stuck):
    # 48 alternating values: ddof=1 variance 0.00922 (stuck) or 0.01021 (not).
    meters, _ = meters_of({D: day_csv("SM-1", D, [low, high] * 24)})
    assert meters["SM-1"]["stuck"] is stuck


def test_stuck_threshold_is_configurable():
    config = RulesConfig(partitions_start=CONFIG.partitions_start, stuck_variance_kw2=0.02, stuck_min_readings=10)
    meters, _ = meters_of({D: day_csv("SM-1", D, [1.0, 1.2] * 5)}, config)
    assert meters["SM-1"]["stuck"] is True


# --- spikes ---------------------------------------------------------------------------------

def test_reading_far_above_the_window_is_a_spike():
    days = full_week()
    values = wavy(96)
    values[40] = 60.0
    days[D] = day_csv("SM-1", D, values)
    meters, readings = meters_of(days)
    spikes = readings.filter(readings["is_spike"])
    assert spikes["value_kw"].to_list() == [60.0]
    assert meters["SM-1"]["spike_count"] == 1
    assert meters["SM-1"]["reliable"] is False


def test_spike_needs_96_usable_readings_in_the_window():
    values = wavy(95)
    values[10] = 60.0
    meters, readings = meters_of({D: day_csv("SM-1", D, values)}, RulesConfig(partitions_start=D))
    assert not readings["is_spike"].any()
    values = wavy(96)
    values[10] = 60.0
    meters, readings = meters_of({D: day_csv("SM-1", D, values)}, RulesConfig(partitions_start=D))
    assert readings["is_spike"].sum() == 1


def test_spikes_are_judged_against_the_whole_window_including_history():
    # D alone has only 10 readings; history makes the window count ≥ 96.
    days = full_week(days=6, last=D - timedelta(days=1))
    days[D] = day_csv("SM-1", D, [1.0] * 9 + [60.0])
    _, readings = meters_of(days)
    assert readings["is_spike"].to_list() == [False] * 9 + [True]


def test_history_outside_the_window_is_ignored():
    # The only history is 7 days back (outside D-6..D): too few readings to evaluate.
    days = {D - timedelta(days=7): day_csv("SM-1", D - timedelta(days=7), wavy(96)), D: day_csv("SM-1", D, [1.0] * 9 + [60.0])}
    _, readings = meters_of(days)
    assert not readings["is_spike"].any()


def test_out_of_range_reading_is_not_a_spike():
    days = full_week()
    values = wavy(96)
    values[40] = 150.0
    days[D] = day_csv("SM-1", D, values)
    _, readings = meters_of(days)
    assert not readings["is_spike"].any()


def test_spike_sigmas_are_configurable():
    days = full_week()
    values = wavy(96)
    values[40] = 1.75  # a mild peak: above mean + 2σ (≈1.57), below mean + 4σ (≈1.88)
    days[D] = day_csv("SM-1", D, values)
    _, default = meters_of(days)
    _, strict = meters_of(days, RulesConfig(partitions_start=CONFIG.partitions_start, spike_sigmas=2.0))
    assert default["is_spike"].sum() == 0
    assert strict["is_spike"].sum() >= 1


# --- gaps -----------------------------------------------------------------------------------

def test_full_week_has_no_gap():
    meters, _ = meters_of(full_week())
    assert meters["SM-1"]["missing_rate_7d"] == 0.0
    assert meters["SM-1"]["gap"] is False
    assert meters["SM-1"]["reliable"] is True


def test_only_today_in_a_seven_day_window_is_a_gap():
    meters, _ = meters_of({D: day_csv("SM-1", D, wavy(96))})
    assert meters["SM-1"]["missing_rate_7d"] == pytest.approx(1 - 96 / 672)
    assert meters["SM-1"]["gap"] is True


def test_window_clipped_at_partitions_start_counts_only_its_days():
    config = RulesConfig(partitions_start=D - timedelta(days=1))
    days = full_week(days=2)
    meters, _ = meters_of(days, config)
    assert meters["SM-1"]["missing_rate_7d"] == 0.0


@pytest.mark.parametrize("present, gap", [(384, False), (383, True)])
def test_gap_threshold_is_strictly_above_twenty_percent(present, gap):
    config = RulesConfig(partitions_start=D - timedelta(days=4))  # 5-day window, 480 slots
    days = {D - timedelta(days=k): day_csv("SM-1", D - timedelta(days=k), wavy(96)) for k in range(4)}
    days[D - timedelta(days=4)] = day_csv("SM-1", D - timedelta(days=4), wavy(present - 4 * 96)) if present > 384 else ""
    if present < 384:
        days[D - timedelta(days=3)] = day_csv("SM-1", D - timedelta(days=3), wavy(96 - (384 - present)))
    meters, _ = meters_of(days, config)
    assert meters["SM-1"]["gap"] is gap


def test_slots_count_once_and_invalid_values_still_count_as_present():
    config = RulesConfig(partitions_start=D)
    text = day_csv("SM-1", D, ["abc"] * 96, unit="kW") + "SM-1,2024-04-15T00:07:00Z,1,kW\n"
    meters, readings = meters_of({D: text}, config)
    assert readings.height == 97
    assert meters["SM-1"]["missing_rate_7d"] == 0.0


def test_gap_limit_is_configurable():
    config = RulesConfig(partitions_start=CONFIG.partitions_start, gap_max_missing_rate=0.9)
    meters, _ = meters_of({D: day_csv("SM-1", D, wavy(96))}, config)
    assert meters["SM-1"]["gap"] is False


# --- reliability ----------------------------------------------------------------------------

def test_reliability_is_per_meter():
    days = full_week("SM-1")
    for day, text in full_week("SM-2").items():
        days[day] += text
    days[D] = day_csv("SM-1", D, wavy(96)) + day_csv("SM-2", D, [3.0] * 96)
    meters, readings = meters_of(days)
    assert meters["SM-1"]["reliable"] is True
    assert meters["SM-2"]["stuck"] is True and meters["SM-2"]["reliable"] is False
    by_meter = readings.group_by("meter_id").agg(pl.col("quality_score").max())
    assert dict(by_meter.iter_rows()) == {"SM-1": 100, "SM-2": 90}
