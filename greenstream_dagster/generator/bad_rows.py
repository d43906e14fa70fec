"""Rows the platform must reject or flag (SPEC §2), with the outcome each must get.

Quarantine rows are extra lines that are not placeable, one kind per code.
Validation issues replace one reading of a meter with a placeable row whose
value or unit is wrong, missing, out of range, or valid but written unusually.
The expected outcome is worked out here with Decimal arithmetic straight from
the spec's text, independently of the platform's rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from greenstream_dagster.generator.value_text import value_text
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.schemas import QUARANTINE_REASONS

# The contract's names; what makes a row earn each code is the generator's own (an independent oracle).
QUARANTINE_CODES = QUARANTINE_REASONS
VALIDATION_KINDS = (
    "INVALID_VALUE",
    "UNIT_NOT_ALLOWED",
    "MISSING_VALUE",
    "MISSING_UNIT",
    "OUT_OF_RANGE_LOW",
    "OUT_OF_RANGE_HIGH",
    "UNUSUAL_NUMBER",  # valid and usable, written in a rare but allowed form
)

INVALID_METER_IDS = ("sm-{n}", "SM-", "XX-{n}", "SM-1234567890123", "SM-{n}a", "SM{n}",
                     "SM-\u0661\u0662\u0663")  # the last uses Arabic-Indic digits, not [0-9]
INVALID_VALUES = ("NaN", "3,250", "abc", "inf", "-Infinity", "1.2.3", "0x1F", ".", "1e")
DISALLOWED_UNITS = ("kWh", "Volts", "kw", "mW", "w", "KW", "Wh")
UNIT_FACTORS = {"W": Decimal("0.001"), "kW": Decimal("1"), "MW": Decimal("1000")}
_VALUE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class BadRow:
    """A non-placeable row: its four fields, or for MALFORMED_ROW fields added or dropped."""

    code: str
    meter_id: str
    timestamp: str
    value: str
    unit: str
    field_delta: int = 0


def quarantine_row(code: str, day: date, meter_id: str, rng: np.random.Generator) -> BadRow:
    """A row that fails with `code` and with no earlier code (SPEC §2 order)."""
    slot_time = f"{day.isoformat()}T{int(rng.integers(0, 24)):02d}:{15 * int(rng.integers(0, 4)):02d}:00"
    good_ts, value, unit = slot_time + "Z", str(int(rng.integers(100, 5000))), "W"
    digits = meter_id.removeprefix("SM-")
    pick = lambda options: options[int(rng.integers(0, len(options)))]  # noqa: E731
    if code == "MALFORMED_ROW":
        return BadRow(code, meter_id, good_ts, value, unit, field_delta=pick((-1, 1, -3)))
    if code == "MISSING_METER_ID":
        return BadRow(code, pick(("", "   ")), good_ts, value, unit)
    if code == "INVALID_METER_ID":
        return BadRow(code, pick(INVALID_METER_IDS).format(n=digits), good_ts, value, unit)
    if code == "MISSING_TIMESTAMP":
        return BadRow(code, meter_id, pick(("", "  ")), value, unit)
    if code == "INVALID_TIMESTAMP":
        d = day.isoformat()
        options = (f"{day.year}-02-30T10:00:00Z", f"{d}T24:00:00Z", d.replace("-", "/") + " 10:00:00",
                   f"{slot_time}z", f"{d}t10:00:00Z", f"{d}T10:00Z", f"{slot_time}+0200",
                   f"{d}T10:60:00Z", f"{slot_time} UTC", "1713196800")
        return BadRow(code, meter_id, pick(options), value, unit)
    if code == "TIMESTAMP_OUTSIDE_PARTITION":
        d = day.isoformat()
        options = (f"{(day - timedelta(days=1)).isoformat()}T23:45:00Z",
                   f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
                   f"{d}T23:30:00-02:00",  # local date is the partition day, UTC is the next
                   f"{d}T00:30:00+02:00")  # … and here the day before
        return BadRow(code, meter_id, pick(options), value, unit)
    raise ValueError(f"unknown quarantine code {code!r}")


def validation_issue(kind: str, watts: int, unit_code: int, unit: str,
                     rng: np.random.Generator) -> tuple[str, str]:
    """(value text, unit text) replacing a reading of `watts` in `unit`; "" is missing."""
    pick = lambda options: options[int(rng.integers(0, len(options)))]  # noqa: E731
    normal = value_text(watts, unit_code)
    if kind == "INVALID_VALUE":
        return pick(INVALID_VALUES), unit
    if kind == "UNIT_NOT_ALLOWED":
        return normal, pick(DISALLOWED_UNITS)
    if kind == "MISSING_VALUE":
        return "", unit
    if kind == "MISSING_UNIT":
        return normal, ""
    if kind == "OUT_OF_RANGE_LOW":
        return value_text(-int(rng.integers(50, 900)), unit_code), unit
    if kind == "OUT_OF_RANGE_HIGH":
        return value_text(int(rng.integers(100_500, 250_000)), unit_code), unit
    if kind == "UNUSUAL_NUMBER":
        # The same number as the reading, so the meter's statistics do not move.
        forms = ["+" + normal, normal + "e0", normal + "E+00"]
        if "." not in normal:
            forms.append(normal + ".")
        else:
            forms.append(normal[1:] if normal.startswith("0.") else normal + "0")
        return pick(forms), unit
    raise ValueError(f"unknown validation kind {kind!r}")


def expected_outcome(value: str, unit: str, rules: RulesConfig, reliable: bool = True) -> dict:
    """value_kw, validation_errors, out_of_range, quality_score and grade (SPEC §2, §4)."""
    value, unit = value.strip(), unit.strip()
    errors = []
    if value and not _VALUE.match(value):
        errors.append("INVALID_VALUE")
    if unit and unit not in UNIT_FACTORS:
        errors.append("UNIT_NOT_ALLOWED")
    value_kw = None
    if value and unit and not errors:
        value_kw = (Decimal(value) * UNIT_FACTORS[unit]).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    in_range = value_kw is not None and Decimal(str(rules.min_kw)) <= value_kw <= Decimal(str(rules.max_kw))
    score = (40 if value and unit else 0) + (30 if not errors else 0) + (20 if in_range else 0)
    score += 10 if reliable else 0
    return {
        "value_kw": None if value_kw is None else float(value_kw),
        "validation_errors": errors,
        "out_of_range": value_kw is not None and not in_range,
        "usable": value_kw is not None and in_range and not errors,
        "quality_score": score,
        "quality_grade": grade(score),
    }


def grade(score: int) -> str:
    return "A" if score >= 90 else "B" if score >= 75 else "C" if score >= 60 else "F"
