"""Per meter and day: the sufficient statistics of the 7-day window rules (SPEC §3).

A window is seven days of 4.8 million readings; its rules need only, per meter,
the count, mean and spread of usable kW and the number of slots with a reading.
Each day's standardized partition keeps these (50,000 rows instead of 4.8
million), and a window merges its days with Chan's parallel formula for the
sum of squared deviations, which is exact in real arithmetic and numerically
stable in floating point. A day's mean and sum of squared deviations come from
exact integer sums (rules/values.py), so they do not depend on the order of the
readings or on how a day was split into meter shards (SPEC §10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from greenstream_dagster.rules.usable import is_usable
from greenstream_dagster.rules.values import exact_mean, exact_squared_deviations

if TYPE_CHECKING:  # the alias only: these columns are typed like the contracts', without importing them
    from greenstream_dagster.rules.schemas import Columns

SLOT_SECONDS = 15 * 60

METER_DAY_STATS_COLUMNS: Columns = {
    "meter_id": pl.Utf8,
    "partition_date": pl.Date,
    "usable_n": pl.UInt32,
    "usable_mean_kw": pl.Float64,
    "usable_m2": pl.Float64,  # Σ (kW − mean)² over the day's usable readings
    "slots": pl.UInt32,  # 15-minute slots of the day with at least one placeable row
}


def meter_day_stats(readings: pl.LazyFrame) -> pl.LazyFrame:
    """Winning readings (any number of days) → one row per meter and day: METER_DAY_STATS_COLUMNS,
    and `last_reading_ts`, the meter's presence on the day for the registry (SPEC §3a)."""
    usable_kw = pl.col("value_kw").filter(is_usable())
    return (
        readings.group_by("meter_id", "partition_date")
        .agg(
            usable_kw.len().alias("usable_n"),
            exact_mean(usable_kw).alias("usable_mean_kw"),
            exact_squared_deviations(usable_kw).alias("usable_m2"),
            (pl.col("reading_ts").dt.epoch("s") // SLOT_SECONDS).n_unique().alias("slots"),
            # For the meter registry (§3a); not part of the window's statistics.
            pl.col("reading_ts").max().alias("last_reading_ts"),
        )
        .with_columns(pl.col("usable_m2").fill_null(0.0))
        .cast(pl.Schema(METER_DAY_STATS_COLUMNS))
    )


def merge_window(stats: pl.LazyFrame) -> pl.LazyFrame:
    """Meter-day statistics of the window's days → per meter: usable_n, mean, m2 and slots of the window."""
    totals = stats.group_by("meter_id").agg(
        pl.col("usable_n").sum().cast(pl.Int64).alias("window_n"),
        (pl.col("usable_n") * pl.col("usable_mean_kw").fill_null(0.0)).sum().alias("_weighted"),
        pl.col("slots").sum().alias("window_slots"),
    ).with_columns((pl.col("_weighted") / pl.col("window_n")).alias("window_mean_kw")).drop("_weighted")
    spread = stats.join(totals.select("meter_id", "window_mean_kw"), on="meter_id").group_by("meter_id").agg(
        (pl.col("usable_m2") + pl.col("usable_n") * (pl.col("usable_mean_kw") - pl.col("window_mean_kw")) ** 2)
        .fill_null(0.0).sum().alias("window_m2")
    )
    return totals.join(spread, on="meter_id", how="left")
