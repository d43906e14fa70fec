"""Stuck meter (SPEC §3): sample variance (ddof = 1) of the meter's usable value_kw on day D
below 0.01 kW², evaluated only when the meter has at least 48 usable readings on D."""

from __future__ import annotations

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.usable import is_usable
from greenstream_dagster.rules.values import exact_variance


def day_variance() -> list[pl.Expr]:
    """Aggregations over a meter's readings of day D: usable_readings and variance_kw2."""
    usable_kw = pl.col("value_kw").filter(is_usable())
    return [usable_kw.len().alias("usable_readings"), exact_variance(usable_kw, ddof=1).alias("variance_kw2")]


def is_stuck(config: RulesConfig) -> pl.Expr:
    return (
        (pl.col("usable_readings") >= config.stuck_min_readings)
        & (pl.col("variance_kw2") < config.stuck_variance_kw2)
    ).fill_null(False).alias("stuck")
