"""Fault statistics per meter and the score of every winning reading of day D (SPEC §3–4).

Input: the standardized readings of day D, and the meter-day statistics of
the window's other days (D-6..D-1), each day from its own partition — or
their readings, from which the statistics are made. Days outside the window
(before the partitions' start, or extra days handed in) are ignored, so
callers may pass more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from greenstream_dagster.rules.communication_gap import is_gap, missing_rate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.erratic_spike import is_spike, spike_threshold
from greenstream_dagster.rules.estimation import short_gap_estimates
from greenstream_dagster.rules.fault_window import fault_window
from greenstream_dagster.rules.meter_day_stats import METER_DAY_STATS_COLUMNS, merge_window, meter_day_stats
from greenstream_dagster.rules.quality_score import quality_grade, quality_score
from greenstream_dagster.rules.reading_order import READING_ORDER
from greenstream_dagster.rules.schemas import SCORED_COLUMNS
from greenstream_dagster.rules.stuck_meter import day_variance, is_stuck

METER_FAULT_COLUMNS = (
    "meter_id", "usable_readings", "variance_kw2", "stuck", "spike_count",
    "missing_rate_7d", "gap", "reliable",
)


@dataclass(frozen=True)
class Scored:
    readings: pl.DataFrame  # SCORED_COLUMNS: every winning reading of D
    meters: pl.DataFrame  # METER_FAULT_COLUMNS: every meter with a winning reading on D
    # ESTIMATE_COLUMNS (§3b): short gaps of D filled apart from the readings. Made here because they,
    # like the scores, are per meter and day: the redo of touched meters re-estimates exactly them.
    estimates: pl.DataFrame


def score_partition(
    readings: pl.DataFrame | pl.LazyFrame,
    partition_date: date,
    config: RulesConfig,
    history_stats: pl.DataFrame | pl.LazyFrame | None = None,
) -> Scored:
    """Score day D's readings; `history_stats` (METER_DAY_STATS_COLUMNS of other days) fills the window.
    Also estimate D's short gaps (§3b), from D's readings alone: they feed none of the scores."""
    window = fault_window(partition_date, config)
    frames = [meter_day_stats(readings.lazy()).select(list(METER_DAY_STATS_COLUMNS))]
    if history_stats is not None:
        frames.append(history_stats.lazy().select(list(METER_DAY_STATS_COLUMNS)))
    in_window = pl.concat(frames).filter(
        pl.col("partition_date").is_between(window.first_day, window.last_day)
    ).unique(subset=["meter_id", "partition_date"], keep="first")  # a day handed in twice counts once
    day = readings.lazy().filter(pl.col("partition_date") == partition_date)
    window_stats = (
        merge_window(in_window)
        .with_columns(spike_threshold(config), missing_rate(window))
        .with_columns(is_gap(config))
        .collect()
    )
    day_flagged = day.join(
        window_stats.lazy().select("meter_id", "spike_threshold_kw"), on="meter_id", how="left"
    ).with_columns(is_spike().alias("is_spike")).collect()
    meters = (
        day_flagged.lazy().group_by("meter_id")
        .agg(*day_variance(), pl.col("is_spike").sum().alias("spike_count"))
        .with_columns(is_stuck(config))
        .join(window_stats.lazy().select("meter_id", "missing_rate_7d", "gap"), on="meter_id", how="left")
        .with_columns(
            (~pl.col("stuck") & ~pl.col("gap") & (pl.col("spike_count") == 0)).alias("reliable")
        )
        .select(METER_FAULT_COLUMNS)
        .sort("meter_id")
        .collect()
    )
    unsorted = (
        day_flagged.lazy().join(
            meters.lazy().select(
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
    ).collect()
    del day_flagged  # freed before the sort's copy: the step's peak memory is this moment
    readings = unsorted.sort(list(READING_ORDER))  # once, for both stores (see reading_order.py)
    del unsorted
    estimates = short_gap_estimates(readings, partition_date, config.max_estimate_slots).collect()
    return Scored(readings=readings.cast(pl.Schema(SCORED_COLUMNS)), meters=meters, estimates=estimates)
