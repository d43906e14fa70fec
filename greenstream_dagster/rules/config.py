"""Thresholds and windows of the rules, with the spec's defaults (SPEC §2–4).

Every value is checked when a RulesConfig is made, wherever it comes from (the
environment, a run's config in the launchpad, a test): a NaN threshold would
silently switch its rule off (every comparison with NaN is false), an infinite
one too, and a time zone Polars does not know would fail the first day at
enrichment. `RulesConfigError.field` names the offending field so the caller
can name the setting it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

# Days before this are not smart-meter data; it also keeps D-6 window arithmetic far from date.min.
EARLIEST_PARTITIONS_START = date(1970, 1, 1)
MAX_ESTIMATE_SLOTS = 94  # the longest gap run a day can hold between two of its slots (§3b)


class RulesConfigError(ValueError):
    """A rules value no rule can work with; `field` is the RulesConfig field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class RulesConfig:
    """Every number the rules use lives here, so no rule hides a literal."""

    partitions_start: date = date(2024, 1, 1)
    # §2 physical range, on the rounded value_kw.
    min_kw: float = 0.0
    max_kw: float = 100.0
    # §2 enrichment.
    timezone: str = "UTC"
    peak_start: time = time(17, 0)
    peak_end: time = time(21, 0)
    hemisphere: str = "north"
    # §3 faults.
    window_days: int = 7
    stuck_variance_kw2: float = 0.01
    stuck_min_readings: int = 48
    spike_sigmas: float = 4.0
    spike_min_readings: int = 96
    gap_max_missing_rate: float = 0.20
    # §3a fleet: a meter seen on one of the days D-30..D-1 and not on D is silent on D.
    silent_lookback_days: int = 30
    # §3b VEE: gap runs of at most this many slots are estimated (4: one hour); 0 switches estimation off.
    max_estimate_slots: int = 4

    def __post_init__(self) -> None:
        check_rules(self)


def _finite(config: RulesConfig, name: str) -> float:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RulesConfigError(name, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise RulesConfigError(name, f"must be a finite number, got {value!r}")
    return value


def _count(config: RulesConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesConfigError(name, f"expected a whole number, got {value!r}")
    if value < minimum:
        raise RulesConfigError(name, f"must be at least {minimum}, got {value}")


def check_timezone(name: str, zone: object) -> None:
    """A zone both the standard library and Polars know (`right/UTC`, `posixrules` are only the former's)."""
    if not isinstance(zone, str) or not zone or not _known_zone(zone):
        raise RulesConfigError(name, f"unknown time zone {zone!r}")


@lru_cache(maxsize=64)
def _known_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
        pl.Series([datetime(2024, 1, 1)]).dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError, pl.exceptions.PolarsError):
        return False
    return True


def check_rules(config: RulesConfig) -> None:
    """Raise RulesConfigError for the first value no rule can work with."""
    if not isinstance(config.partitions_start, date) or config.partitions_start < EARLIEST_PARTITIONS_START:
        raise RulesConfigError("partitions_start", f"must be a date from {EARLIEST_PARTITIONS_START} on, "
                                                   f"got {config.partitions_start!r}")
    min_kw, max_kw = _finite(config, "min_kw"), _finite(config, "max_kw")
    if min_kw > max_kw:
        raise RulesConfigError("min_kw", f"{min_kw} is above the maximum {max_kw}")
    check_timezone("timezone", config.timezone)
    for name in ("peak_start", "peak_end"):
        value = getattr(config, name)
        if not isinstance(value, time) or value.tzinfo is not None:
            raise RulesConfigError(name, f"expected a local time of day without offset, got {value!r}")
    if config.peak_start >= config.peak_end:
        raise RulesConfigError("peak_start", "must be before the end of the peak window")
    if config.hemisphere not in ("north", "south"):
        raise RulesConfigError("hemisphere", f"must be 'north' or 'south', got {config.hemisphere!r}")
    _count(config, "window_days", 1)
    # A variance or a sigma of 0 or less flags every meter or every reading above the mean.
    if _finite(config, "stuck_variance_kw2") <= 0:
        raise RulesConfigError("stuck_variance_kw2", f"must be above 0, got {config.stuck_variance_kw2}")
    if _finite(config, "spike_sigmas") <= 0:
        raise RulesConfigError("spike_sigmas", f"must be above 0, got {config.spike_sigmas}")
    # A sample variance (ddof = 1) needs two readings.
    _count(config, "stuck_min_readings", 2)
    _count(config, "spike_min_readings", 2)
    if not 0 <= _finite(config, "gap_max_missing_rate") <= 1:
        raise RulesConfigError("gap_max_missing_rate", f"is a share: must be from 0 to 1, got {config.gap_max_missing_rate}")
    _count(config, "silent_lookback_days", 1)
    # A run has at most 94 slots (it is bounded by two slots of the day's 96).
    _count(config, "max_estimate_slots", 0)
    if config.max_estimate_slots > MAX_ESTIMATE_SLOTS:
        raise RulesConfigError("max_estimate_slots", f"must be at most {MAX_ESTIMATE_SLOTS} (slots of a day "
                                                     f"between two others), got {config.max_estimate_slots}")
