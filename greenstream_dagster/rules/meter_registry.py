"""Meter registry (SPEC §3a): every meter with a placeable row on any materialized day.

The registry is a function of the per-day *presence* of meters (one row per meter
and day with a placeable row, and its last reading time of that day), which each
day's standardized statistics already hold. `registry_from_presence` is the
definition; `merge_day` is the same function computed incrementally when one
day's presence is (re)materialized, so a day of 50,000 meters costs one pass over
50,000 rows instead of a scan of every day ever seen. Re-running an old day never
moves `last_seen` back: the merge keeps the latest of the stored and the new day.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:  # the alias only: these columns are typed like the contracts', without importing them
    from greenstream_dagster.rules.schemas import Columns

PRESENCE_COLUMNS: Columns = {
    "meter_id": pl.Utf8,
    "partition_date": pl.Date,
    "last_reading_ts": pl.Datetime("us", "UTC"),
}

REGISTRY_COLUMNS: Columns = {
    "meter_id": pl.Utf8,
    "first_seen": pl.Date,
    "last_seen": pl.Date,
    "last_reading_ts": pl.Datetime("us", "UTC"),
    "days_seen": pl.Int32,
}


def day_presence(meter_stats: pl.DataFrame, day: date) -> pl.DataFrame:
    """A day's meter statistics (one row per meter with a placeable row) → its presence rows."""
    return (
        meter_stats.lazy()
        .filter(pl.col("partition_date") == day)
        .group_by("meter_id")
        .agg(pl.col("last_reading_ts").max())
        .with_columns(pl.lit(day).alias("partition_date"))
        .select(list(PRESENCE_COLUMNS))
        .collect()
        .cast(pl.Schema(PRESENCE_COLUMNS))
    )


def registry_from_presence(presence: pl.LazyFrame) -> pl.LazyFrame:
    """The registry as a pure function of every materialized day's presence."""
    return (
        presence.group_by("meter_id")
        .agg(
            pl.col("partition_date").min().alias("first_seen"),
            pl.col("partition_date").max().alias("last_seen"),
            pl.col("last_reading_ts").sort_by("partition_date").last(),
            pl.col("partition_date").n_unique().alias("days_seen"),
        )
        .select(list(REGISTRY_COLUMNS))
        .cast(pl.Schema(REGISTRY_COLUMNS))
    )


def merge_day(registry: pl.DataFrame, before: pl.DataFrame, after: pl.DataFrame, day: date) -> pl.DataFrame:
    """Registry rows of the meters present on `day` after it was (re)materialized.

    `registry`: the stored rows of at least those meters; `before`: the day's stored
    presence (empty on a first run); `after`: its new presence. Meters that were on
    the day before but are no longer (a landing object removed on purpose) are not
    handled here: their rows are recomputed from the remaining presence by the caller.
    """
    present_before = before.select("meter_id", pl.lit(True).alias("_before"))
    return (
        after.lazy()
        .select("meter_id", pl.col("last_reading_ts").alias("_ts"))
        .join(registry.lazy(), on="meter_id", how="left")
        .join(present_before.lazy(), on="meter_id", how="left")
        .with_columns(pl.lit(day).alias("_day"))
        .select(
            "meter_id",
            pl.min_horizontal("first_seen", "_day").alias("first_seen"),
            pl.max_horizontal("last_seen", "_day").alias("last_seen"),
            # The day's last reading counts when it is the meter's latest day (or a re-run of it).
            pl.when(pl.col("last_seen").is_null() | (pl.col("last_seen") <= pl.col("_day")))
            .then(pl.col("_ts")).otherwise(pl.col("last_reading_ts")).alias("last_reading_ts"),
            (pl.col("days_seen").fill_null(0) + pl.when(pl.col("_before")).then(0).otherwise(1)).alias("days_seen"),
        )
        .collect()
        .cast(pl.Schema(REGISTRY_COLUMNS))
    )


def removed_meters(before: pl.DataFrame, after: pl.DataFrame) -> pl.Series:
    """Meters present on the day before its re-run and absent after it."""
    return before.join(after, on="meter_id", how="anti")["meter_id"]
