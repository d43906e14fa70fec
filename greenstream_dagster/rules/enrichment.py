"""Enrichment of winning readings in the configured local time zone (SPEC §2).

`tariff_period` is PEAK when peak_start ≤ local time < peak_end (17:00–21:00 by
default), else OFF_PEAK. `season` follows the local month — Dec–Feb WINTER,
Mar–May SPRING, Jun–Aug SUMMER, Sep–Nov AUTUMN — swapped in the south.
"""

from __future__ import annotations

from datetime import time

import polars as pl

from greenstream_dagster.rules.config import RulesConfig

_NORTH_SEASONS = {12: "WINTER", 1: "WINTER", 2: "WINTER", 3: "SPRING", 4: "SPRING", 5: "SPRING",
                  6: "SUMMER", 7: "SUMMER", 8: "SUMMER", 9: "AUTUMN", 10: "AUTUMN", 11: "AUTUMN"}
_SOUTH = {"WINTER": "SUMMER", "SUMMER": "WINTER", "SPRING": "AUTUMN", "AUTUMN": "SPRING"}


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _local(reading_ts: pl.Expr, config: RulesConfig) -> pl.Expr:
    # UTC needs no conversion: skipping it saves a time-zone lookup per row.
    return reading_ts if config.timezone == "UTC" else reading_ts.dt.convert_time_zone(config.timezone)


def tariff_period(reading_ts: pl.Expr, config: RulesConfig) -> pl.Expr:
    local = _local(reading_ts, config)
    seconds = local.dt.hour().cast(pl.Int32) * 3600 + local.dt.minute().cast(pl.Int32) * 60 + local.dt.second().cast(pl.Int32)
    peak = (seconds >= _seconds(config.peak_start)) & (seconds < _seconds(config.peak_end))
    return pl.when(peak).then(pl.lit("PEAK")).otherwise(pl.lit("OFF_PEAK"))


def season(reading_ts: pl.Expr, config: RulesConfig) -> pl.Expr:
    seasons = _NORTH_SEASONS
    if config.hemisphere == "south":
        seasons = {month: _SOUTH[name] for month, name in _NORTH_SEASONS.items()}
    month = _local(reading_ts, config).dt.month()
    return month.replace_strict(seasons, return_dtype=pl.Utf8)
