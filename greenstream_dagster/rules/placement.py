"""Placeable rows and the quarantine (SPEC §2).

A row is placeable when its field count matches the header, `meter_id` matches
`^SM-[0-9]{1,12}$` (case-sensitive) and its timestamp parses to a UTC instant on
the partition day. Otherwise it is quarantined with the first reason that
applies, in the spec's order.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from greenstream_dagster.rules.schemas import METER_ID_PATTERN
from greenstream_dagster.rules.timestamps import with_parsed_timestamp


def with_placement(rows: pl.LazyFrame, partition_date: date) -> pl.LazyFrame:
    """Add `reading_ts` (UTC, null when invalid) and `reason` (null for placeable rows)."""
    reading_ts = pl.col("reading_ts")
    reason = (
        pl.when(~pl.col("field_count_ok")).then(pl.lit("MALFORMED_ROW"))
        .when(pl.col("meter_id").is_null()).then(pl.lit("MISSING_METER_ID"))
        .when(~pl.col("meter_id").str.contains(METER_ID_PATTERN)).then(pl.lit("INVALID_METER_ID"))
        .when(pl.col("timestamp").is_null()).then(pl.lit("MISSING_TIMESTAMP"))
        .when(reading_ts.is_null()).then(pl.lit("INVALID_TIMESTAMP"))
        .when(reading_ts.dt.date() != partition_date).then(pl.lit("TIMESTAMP_OUTSIDE_PARTITION"))
        .otherwise(None)
    )
    return with_parsed_timestamp(rows, "timestamp", "reading_ts").with_columns(reason.alias("reason"))
