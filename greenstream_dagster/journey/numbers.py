"""Numbers as the story prints them: exact decimal text, never `3.2500000000000004`."""

from __future__ import annotations

from decimal import Decimal

from greenstream_dagster.rules.values import UNIT_EXPONENTS


def decimal_text(value: float | int) -> str:
    """The shortest decimal that round-trips the float, without an exponent: 3.25, 1000, 0.0001."""
    text = format(Decimal(repr(float(value))).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def unit_factor(unit: str) -> str | None:
    """The SPEC §2 factor to kW as text (`W` → 0.001), None for a unit that is not allowed."""
    exponent = UNIT_EXPONENTS.get(unit)
    return None if exponent is None else format(Decimal(1).scaleb(exponent), "f")
