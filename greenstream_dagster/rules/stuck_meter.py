"""Stuck meter (SPEC §3): sample variance (ddof = 1) of the meter's usable value_kw on day D
below 0.01 kW², evaluated only when the meter has at least 48 usable readings on D."""

from __future__ import annotations

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.usable import is_usable


def stuck_meters(day_readings: pl.LazyFrame, config: RulesConfig) -> pl.LazyFrame:
    """Per meter with a winning reading on D: usable_readings, variance_kw2, stuck."""
    usable_kw = pl.col("value_kw").filter(is_usable())
    return day_readings.group_by("meter_id").agg(
        usable_kw.len().alias("usable_readings"),
        usable_kw.var(ddof=1).alias("variance_kw2"),
    ).with_columns(
        (
            (pl.col("usable_readings") >= config.stuck_min_readings)
            & (pl.col("variance_kw2") < config.stuck_variance_kw2)
        ).fill_null(False).alias("stuck")
    )
