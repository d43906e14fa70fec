"""Erratic spike (SPEC §3): a usable reading on D whose value_kw exceeds mean + 4 × standard
deviation (ddof = 1) of the meter's usable readings over the 7-day window (the reading itself
included), evaluated only when that window holds at least 96 usable readings."""

from __future__ import annotations

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.usable import is_usable


def spike_threshold(config: RulesConfig) -> pl.Expr:
    """Aggregation over a meter's window readings: `spike_threshold_kw`, null with too few usable readings."""
    usable_kw = pl.col("value_kw").filter(is_usable())
    return (
        pl.when(usable_kw.len() >= config.spike_min_readings)
        .then(usable_kw.mean() + config.spike_sigmas * usable_kw.std(ddof=1))
        .alias("spike_threshold_kw")
    )


def is_spike() -> pl.Expr:
    """Needs `spike_threshold_kw` joined onto the day's readings; not evaluated counts as no spike."""
    return (is_usable() & (pl.col("value_kw") > pl.col("spike_threshold_kw"))).fill_null(False)
