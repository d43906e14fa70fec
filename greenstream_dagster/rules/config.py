"""Thresholds and windows of the rules, with the spec's defaults (SPEC §2–4).

Each field is declared once (rules/declared_settings.py): its variable, kind,
default, bounds and meaning. Every value is checked when a RulesConfig is made,
wherever it comes from (the environment, a run's config in the launchpad, a
test): a NaN threshold would silently switch its rule off (every comparison
with NaN is false), an infinite one too, and a time zone Polars does not know
would fail the first day at enrichment. `RulesConfigError.field` names the
offending field so the caller can name the setting it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from greenstream_dagster.rules.declared_settings import CHOICE, COUNT, DATE, DECIMAL, TIME, ZONE, FieldError, check_declared, declared

# Days before this are not smart-meter data; it also keeps D-6 window arithmetic far from date.min.
EARLIEST_PARTITIONS_START = date(1970, 1, 1)
MAX_ESTIMATE_SLOTS = 94  # the longest gap run a day can hold between two of its slots (§3b)
MAX_LOOKBACK_DAYS = 366  # a look-back lists or reads every day in it


class RulesConfigError(FieldError):
    """A rules value no rule can work with; `field` is the RulesConfig field."""


@dataclass(frozen=True)
class RulesConfig:
    """Every number the rules use lives here, so no rule hides a literal."""

    partitions_start: date = declared("GREENSTREAM_PARTITIONS_START", DATE, date(2024, 1, 1), "first partition day",
                                      minimum=EARLIEST_PARTITIONS_START)
    # §2 physical range, on the rounded value_kw.
    min_kw: float = declared("GREENSTREAM_MIN_KW", DECIMAL, 0.0, "§2 lowest value_kw in the physical range")
    max_kw: float = declared("GREENSTREAM_MAX_KW", DECIMAL, 100.0, "§2 highest value_kw in the physical range")
    # §2 enrichment.
    timezone: str = declared("GREENSTREAM_TIMEZONE", ZONE, "UTC", "§2 local time for tariff periods and seasons")
    peak_start: time = declared("GREENSTREAM_PEAK_START", TIME, time(17, 0), "§2 start of the PEAK tariff window (HH:MM)")
    peak_end: time = declared("GREENSTREAM_PEAK_END", TIME, time(21, 0), "§2 end of the PEAK tariff window (HH:MM)")
    hemisphere: str = declared("GREENSTREAM_HEMISPHERE", CHOICE, "north", "§2 south swaps the seasons", choices=("north", "south"))
    # §3 faults; the window is the spec's week and has no variable.
    window_days: int = declared(None, COUNT, 7, "§3 days D-6..D the faults look at", minimum=1)
    stuck_variance_kw2: float = declared("GREENSTREAM_STUCK_VARIANCE_KW2", DECIMAL, 0.01,
                                         "§3 stuck: sample variance of the day below this (kW²)", above=0)
    # A sample variance (ddof = 1) needs two readings.
    stuck_min_readings: int = declared("GREENSTREAM_STUCK_MIN_READINGS", COUNT, 48, "§3 stuck: readings a day needs", minimum=2)
    spike_sigmas: float = declared("GREENSTREAM_SPIKE_SIGMAS", DECIMAL, 4.0, "§3 spike: this many standard deviations off", above=0)
    spike_min_readings: int = declared("GREENSTREAM_SPIKE_MIN_READINGS", COUNT, 96, "§3 spike: readings the window needs", minimum=2)
    gap_max_missing_rate: float = declared("GREENSTREAM_GAP_MAX_MISSING_RATE", DECIMAL, 0.20,
                                           "§3 gap: share of the day's slots that may be missing", minimum=0, maximum=1)
    # §3a fleet: a meter seen on one of the days D-30..D-1 and not on D is silent on D.
    silent_lookback_days: int = declared("GREENSTREAM_SILENT_LOOKBACK_DAYS", COUNT, 30,
                                         "§3a days before D a silent meter was seen in", minimum=1, maximum=MAX_LOOKBACK_DAYS)
    # §3b VEE: gap runs of at most this many slots are estimated (4: one hour); 0 switches estimation off.
    max_estimate_slots: int = declared("GREENSTREAM_MAX_ESTIMATE_SLOTS", COUNT, 4, "§3b longest gap run estimated (slots; 0: none)",
                                       minimum=0, maximum=MAX_ESTIMATE_SLOTS)

    def __post_init__(self) -> None:
        check_declared(self, RulesConfigError)
        check_rules(self)


def check_rules(config: RulesConfig) -> None:
    """What no one field's bounds can say: the range and the peak window are in order."""
    if config.min_kw > config.max_kw:
        raise RulesConfigError("min_kw", f"{config.min_kw} is above the maximum {config.max_kw}")
    if config.peak_start >= config.peak_end:
        raise RulesConfigError("peak_start", "must be before the end of the peak window")
