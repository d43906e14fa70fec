"""Rows of a partition day → quarantine, winning readings and revisions (SPEC §2).

The stages, each a rule module of its own: placement (quarantine reasons),
interval-key resolution (record_id of the keys delivered more than once), then value/unit standardization and
enrichment of the winners only — losers need nothing but their text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.enrichment import season, tariff_period
from greenstream_dagster.rules.interval_key import resolve_interval_keys
from greenstream_dagster.rules.meter_day_stats import meter_day_stats
from greenstream_dagster.rules.placement import with_placement
from greenstream_dagster.rules.schemas import (
    REJECTED_COLUMNS,
    REVISION_COLUMNS,
    STANDARDIZED_COLUMNS,
)
from greenstream_dagster.rules.values import out_of_range, validation_errors, with_value_kw


@dataclass(frozen=True)
class Standardized:
    readings: pl.DataFrame  # STANDARDIZED_COLUMNS, one per interval key
    rejected: pl.DataFrame  # REJECTED_COLUMNS, the quarantine
    revisions: pl.DataFrame  # REVISION_COLUMNS, the audit of superseded content
    meter_stats: pl.DataFrame  # METER_DAY_STATS_COLUMNS: what later days' fault windows read of this day


def standardize(rows: pl.DataFrame | pl.LazyFrame, partition_date: date, config: RulesConfig) -> Standardized:
    placed = with_placement(rows.lazy(), partition_date).with_columns(
        pl.lit(partition_date).alias("partition_date")
    ).collect()
    rejected = (
        placed.lazy().filter(pl.col("reason").is_not_null())
        .select(list(REJECTED_COLUMNS))
        .sort("source_key", "source_line")
        .collect()
    )
    placeable = placed.lazy().filter(pl.col("reason").is_null()).select(
        "meter_id", "reading_ts", "partition_date", "source_key", "source_modified_at", "source_line",
        pl.col("value").alias("value_raw"),
        pl.col("unit").alias("unit_raw"),
    ).collect()
    del placed  # the raw text of every row is needed only for the quarantine, now taken
    resolved = resolve_interval_keys(placeable.lazy())
    kw = pl.col("value_kw")
    readings_plan = (
        with_value_kw(resolved.winners, "value_raw", "unit_raw")
        .with_columns(
            tariff_period(pl.col("reading_ts"), config).alias("tariff_period"),
            season(pl.col("reading_ts"), config).alias("season"),
            validation_errors(pl.col("value_raw"), pl.col("unit_raw"), pl.col("value_overflow")).alias("validation_errors"),
            out_of_range(kw, config.min_kw, config.max_kw).alias("out_of_range"),
        )
        # Not sorted: ordering 4.8 million wide rows costs more than the rest of the stage,
        # and every consumer either aggregates or sorts for itself (the lake by meter and time).
        .select(list(STANDARDIZED_COLUMNS))
    )
    revisions_plan = resolved.revisions.select(list(REVISION_COLUMNS)).sort("meter_id", "reading_ts", "record_id")
    readings, revisions = pl.collect_all([readings_plan, revisions_plan])
    readings = readings.cast(pl.Schema(STANDARDIZED_COLUMNS))
    return Standardized(
        readings=readings,
        meter_stats=meter_day_stats(readings.lazy()).collect(),
        rejected=rejected.cast(pl.Schema(REJECTED_COLUMNS)),
        revisions=revisions.cast(pl.Schema(REVISION_COLUMNS)),
    )
