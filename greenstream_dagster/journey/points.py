"""Which SPEC §4 quality points a reading lost, and why — read back from its stored flags.

The score itself is computed by `rules.quality_score` (Polars, per partition);
this explains one stored reading with the same point values, so the story can
list every point lost beside the rule that took it.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenstream_dagster.journey.facts import Transformation
from greenstream_dagster.journey.numbers import decimal_text
from greenstream_dagster.rules.quality_score import (
    GRADE_FLOORS,
    POINTS_IN_RANGE,
    POINTS_PRESENT,
    POINTS_RELIABLE,
    POINTS_VALID,
)
from greenstream_dagster.rules.values import UNIT_EXPONENTS

MAX_SCORE = POINTS_PRESENT + POINTS_VALID + POINTS_IN_RANGE + POINTS_RELIABLE


@dataclass(frozen=True)
class PointsLost:
    points: int
    rule: str
    why: str


def points_lost(t: Transformation) -> list[PointsLost]:
    """Every SPEC §4 rule the reading failed, in the spec's order."""
    lost = _data_points_lost(t)
    reasons = unreliability_reasons(t, lost)
    if reasons:
        lost.append(PointsLost(POINTS_RELIABLE, "meter unreliable", "; ".join(reasons)))
    return lost


def _data_points_lost(t: Transformation) -> list[PointsLost]:
    """+40 present, +30 valid, +20 in range: what the reading's own fields cost it."""
    lost = []
    missing = [name for name, text in (("value", t.value_raw), ("unit", t.unit_raw)) if text is None]
    if missing:
        lost.append(PointsLost(POINTS_PRESENT, "missing value or unit", " and ".join(missing) + " missing"))
    if t.validation_errors:
        lost.append(PointsLost(POINTS_VALID, "validation errors",
                               "; ".join(_error_reason(code, t) for code in t.validation_errors)))
    if t.value_kw is None:
        lost.append(PointsLost(POINTS_IN_RANGE, "out of range / no value",
                               "no value_kw: the value or unit is missing or invalid"))
    elif t.out_of_range:
        lost.append(PointsLost(
            POINTS_IN_RANGE, "out of range / no value",
            f"{decimal_text(t.value_kw)} kW is outside {decimal_text(t.rules.min_kw)}–{decimal_text(t.rules.max_kw)} kW",
        ))
    return lost


def unreliability_reasons(t: Transformation, data_lost: list[PointsLost] | None = None) -> list[str]:
    """Why the meter was not reliable on the day (SPEC §3: stuck, gap or a spike); empty when it was."""
    rules, meter = t.rules, t.meter_day
    reasons = []
    if t.meter_stuck:
        detail = ""
        if meter is not None and meter.variance_kw2 is not None:
            detail = (f": variance {meter.variance_kw2:.3g} kW² < {rules.stuck_variance_kw2:g} "
                      f"over {meter.usable_readings} usable readings")
        reasons.append("meter stuck" + detail)
    if t.meter_gap:
        detail = ""
        if meter is not None and meter.missing_rate_7d is not None:
            detail = f": {meter.missing_rate_7d:.1%} of its 7-day slots missing > {rules.gap_max_missing_rate:.0%}"
        reasons.append("communication gap" + detail)
    if t.is_spike:
        reasons.append(f"this reading is a spike (above mean + {rules.spike_sigmas:g}σ of the meter's 7-day window)")
    other_spikes = meter.spike_count - int(t.is_spike) if meter is not None else 0
    if other_spikes > 0:
        reasons.append(f"{other_spikes} other spike reading{'s' if other_spikes > 1 else ''} of the meter that day")
    if not reasons:
        if meter is not None:
            unreliable = not meter.reliable
        else:  # without the meter's statistics only the score can tell
            lost = _data_points_lost(t) if data_lost is None else data_lost
            unreliable = t.quality_score <= MAX_SCORE - POINTS_RELIABLE - sum(p.points for p in lost)
        if unreliable:
            reasons.append("the meter was unreliable that day (a spike on another of its readings)")
    return reasons


def grade_band(grade: str) -> str:
    """The score band of a grade (SPEC §4): A 90–100, B 75–89, C 60–74, F below 60."""
    upper = MAX_SCORE
    for letter, floor in GRADE_FLOORS:
        if letter == grade:
            return f"{floor}–{upper}"
        upper = floor - 1
    return f"below {GRADE_FLOORS[-1][1]}"


def _error_reason(code: str, t: Transformation) -> str:
    if code == "INVALID_VALUE":
        return f"INVALID_VALUE: {t.value_raw!r} is not a decimal number"
    if code == "UNIT_NOT_ALLOWED":
        return f"UNIT_NOT_ALLOWED: {t.unit_raw!r} is not one of {', '.join(UNIT_EXPONENTS)}"
    return code
