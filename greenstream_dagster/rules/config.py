"""Thresholds and windows of the rules, with the spec's defaults (SPEC §2–4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time


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

    def __post_init__(self) -> None:
        if self.hemisphere not in ("north", "south"):
            raise ValueError(f"hemisphere must be 'north' or 'south', got {self.hemisphere!r}")
        if self.min_kw > self.max_kw:
            raise ValueError(f"min_kw ({self.min_kw}) is above max_kw ({self.max_kw})")
        if self.peak_start >= self.peak_end:
            raise ValueError("peak_start must be before peak_end")
        if self.window_days < 1:
            raise ValueError("window_days must be at least 1")
        if self.silent_lookback_days < 1:
            raise ValueError("silent_lookback_days must be at least 1")
