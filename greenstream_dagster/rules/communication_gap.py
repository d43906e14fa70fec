"""Communication gap (SPEC §3): missing_rate_7d = 1 − (slots of the 7-day window in which the
meter has at least one placeable row) / (96 × days in the window); a gap when above 0.20.

Slots are floor(reading_ts, 15 min). Winning readings stand for the placeable rows: every
placeable row's interval key has exactly one winner, so they cover the same slots.
"""

from __future__ import annotations

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.fault_window import FaultWindow


def missing_rate(window: FaultWindow) -> pl.Expr:
    """From a meter's merged window statistics: `missing_rate_7d`.

    Slots never straddle two UTC days, so the window's slots are the sum of its days' slots.
    """
    return (1.0 - pl.col("window_slots") / window.slots).alias("missing_rate_7d")


def is_gap(config: RulesConfig) -> pl.Expr:
    return (pl.col("missing_rate_7d") > config.gap_max_missing_rate).alias("gap")
