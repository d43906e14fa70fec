"""Fault statistics per meter and the score of every winning reading of day D (SPEC §3–4).

Input: the standardized readings of day D and of the window's other days
(D-6..D-1), each day from its own partition. Days outside the window (before
the partitions' start, or extra days handed in) are ignored, so callers may
pass more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from greenstream_dagster.rules.communication_gap import missing_rates
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.erratic_spike import is_spike, spike_thresholds
from greenstream_dagster.rules.fault_window import fault_window
from greenstream_dagster.rules.quality_score import quality_grade, quality_score
from greenstream_dagster.rules.schemas import SCORED_COLUMNS
from greenstream_dagster.rules.stuck_meter import stuck_meters

# What the fault statistics read of the window's other days: a projection keeps 7 days small.
FAULT_INPUT_COLUMNS = ("meter_id", "reading_ts", "partition_date", "value_kw", "out_of_range", "validation_errors")
METER_FAULT_COLUMNS = (
    "meter_id", "usable_readings", "variance_kw2", "stuck", "spike_count",
    "missing_rate_7d", "gap", "reliable",
)


@dataclass(frozen=True)
class Scored:
    readings: pl.DataFrame  # SCORED_COLUMNS: every winning reading of D
    meters: pl.DataFrame  # METER_FAULT_COLUMNS: every meter with a winning reading on D


def score_partition(
    readings: pl.DataFrame | pl.LazyFrame,
    partition_date: date,
    config: RulesConfig,
    history: pl.DataFrame | pl.LazyFrame | None = None,
) -> Scored:
    """Score day D's readings; `history` (other days, FAULT_INPUT_COLUMNS suffice) fills the window."""
    window = fault_window(partition_date, config)
    frames = [readings.lazy().select(FAULT_INPUT_COLUMNS)]
    if history is not None:
        frames.append(history.lazy().select(FAULT_INPUT_COLUMNS))
    in_window = pl.concat(frames).filter(
        pl.col("partition_date").is_between(window.first_day, window.last_day)
    )
    day = readings.lazy().filter(pl.col("partition_date") == partition_date)
    day_flagged = day.join(
        spike_thresholds(in_window, config), on="meter_id", how="left"
    ).with_columns(is_spike().alias("is_spike"))
    meters = (
        stuck_meters(day, config)
        .join(day_flagged.group_by("meter_id").agg(pl.col("is_spike").sum().alias("spike_count")), on="meter_id")
        .join(missing_rates(in_window, window, config), on="meter_id", how="left")
        .with_columns(
            (~pl.col("stuck") & ~pl.col("gap") & (pl.col("spike_count") == 0)).alias("reliable")
        )
        .select(METER_FAULT_COLUMNS)
        .sort("meter_id")
    )
    readings = (
        day_flagged.join(
            meters.select(
                "meter_id",
                pl.col("stuck").alias("meter_stuck"),
                pl.col("gap").alias("meter_gap"),
                pl.col("reliable").alias("meter_reliable"),
            ),
            on="meter_id",
        )
        .with_columns(quality_score().alias("quality_score"))
        .with_columns(quality_grade(pl.col("quality_score")).alias("quality_grade"))
        .select(list(SCORED_COLUMNS))
        .sort("meter_id", "reading_ts")
    )
    readings, meters = pl.collect_all([readings, meters])
    return Scored(readings=readings.cast(SCORED_COLUMNS), meters=meters)
