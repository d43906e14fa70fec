"""Erratic spike (SPEC §3): a usable reading on D whose value_kw exceeds mean + 4 × standard
deviation (ddof = 1) of the meter's usable readings over the 7-day window (the reading itself
included), evaluated only when that window holds at least 96 usable readings."""

from __future__ import annotations

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.usable import is_usable


def spike_threshold(config: RulesConfig) -> pl.Expr:
    """From a meter's merged window statistics (meter_day_stats.merge_window): `spike_threshold_kw`,
    null where the window holds too few usable readings."""
    n = pl.col("window_n")
    std = (pl.col("window_m2") / (n - 1)).sqrt()  # sample standard deviation, ddof = 1
    return (
        pl.when(n >= config.spike_min_readings)
        .then(pl.col("window_mean_kw") + config.spike_sigmas * std)
        .alias("spike_threshold_kw")
    )


def is_spike() -> pl.Expr:
    """Needs `spike_threshold_kw` joined onto the day's readings; not evaluated counts as no spike."""
    return (is_usable() & (pl.col("value_kw") > pl.col("spike_threshold_kw"))).fill_null(False)
