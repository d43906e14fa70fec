"""SPEC §4: +40 present, +30 valid, +20 in range, +10 reliable meter; grades A/B/C/F."""

from datetime import date

import polars as pl
import pytest

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.quality_score import quality_grade
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster_tests.builders import day_csv, window_readings

D = date(2024, 4, 15)
RELIABLE = RulesConfig(partitions_start=D)  # one-day window: 96 slots make a meter gap-free


def scored_reading(value: str, unit: str, reliable: bool):
    """Score one reading at 12:00 among a meter's otherwise normal day (96 slots, varied load)."""
    values = [str(1.0 + (i % 7) / 10) for i in range(96)]
    units = ["kW"] * 96
    values[48], units[48] = value, unit
    lines = day_csv("SM-1", D, range(96)).splitlines()
    text = "\n".join(
        ",".join(line.split(",")[:2] + [v, u]) for line, v, u in zip(lines, values, units)
    ) + "\n"
    # The unreliable variant: a silent meter (a 7-day window with one day of data).
    config = RELIABLE if reliable else RulesConfig(partitions_start=date(2024, 1, 1))
    scored = score_partition(window_readings({D: text}, config), D, config)
    row = scored.readings.filter(pl.col("reading_ts").dt.hour() == 12).row(0, named=True)
    return row["quality_score"], row["quality_grade"]


@pytest.mark.parametrize(
    "value, unit, reliable, score, grade",
    [
        ("1.5", "kW", True, 100, "A"),  # nothing lost
        ("1.5", "kW", False, 90, "A"),  # -10 unreliable meter
        ("250", "kW", True, 80, "B"),  # -20 out of range
        ("250", "kW", False, 70, "C"),  # -20 -10
        ("-1", "kW", True, 80, "B"),
        ("abc", "kW", True, 50, "F"),  # -30 invalid value, -20 no value_kw
        ("1.5", "kWh", True, 50, "F"),  # -30 unit not allowed, -20
        ("abc", "kWh", False, 40, "F"),
        ("", "kW", True, 40, "F"),  # -40 missing value, -20
        ("1.5", "", True, 40, "F"),  # -40 missing unit, -20
        ("", "", False, 30, "F"),
        ("abc", "", True, 10, "F"),  # -40 missing unit, -30 invalid value, -20
        ("", "Volts", False, 0, "F"),
    ],
)
def test_score_for_each_combination_of_lost_points(value, unit, reliable, score, grade):
    assert scored_reading(value, unit, reliable) == (score, grade)


@pytest.mark.parametrize(
    "score, grade",
    [(100, "A"), (90, "A"), (89, "B"), (75, "B"), (74, "C"), (60, "C"), (59, "F"), (0, "F")],
)
def test_grade_boundaries(score, grade):
    frame = pl.DataFrame({"s": [score]}).select(quality_grade(pl.col("s")))
    assert frame.item() == grade


def test_every_winning_reading_keeps_its_flags_beside_its_score():
    values = [str(1.0 + (i % 7) / 10) for i in range(96)]
    text = day_csv("SM-1", D, values) + "SM-1,2024-04-15T00:00:00Z,1.3,kW\n"  # a revision of slot 0
    scored = score_partition(window_readings({D: text}, RELIABLE), D, RELIABLE)
    assert scored.readings.height == 96
    first = scored.readings.sort("reading_ts").row(0, named=True)
    assert first["revised"] is True and first["value_raw"] == "1.3"
    for column in ("validation_errors", "out_of_range", "revised", "is_spike", "meter_stuck", "meter_gap"):
        assert column in scored.readings.columns
