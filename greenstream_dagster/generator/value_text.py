"""Reading values as text in the meter's unit, from whole watts.

Values are kept as whole watts so every text is exact: `3250` W, `3.250` kW,
`0.003250` MW all mean 3.25 kW, and value_kw needs no rounding.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from greenstream_dagster.generator.load_profile import UNITS

UNIT_W, UNIT_KW, UNIT_MW = (UNITS.index(u) for u in ("W", "kW", "MW"))


def value_text(watts: int, unit_code: int) -> str:
    """One value in the unit's usual form (kW with 3 decimals, MW with 6)."""
    sign, magnitude = ("-" if watts < 0 else ""), abs(int(watts))
    if unit_code == UNIT_W:
        return f"{sign}{magnitude}"
    if unit_code == UNIT_KW:
        return f"{sign}{magnitude // 1000}.{magnitude % 1000:03d}"
    return f"{sign}{magnitude // 1_000_000}.{magnitude % 1_000_000:06d}"


def value_texts(watts: np.ndarray, unit_codes: np.ndarray) -> pl.Series:
    """The vectorised `value_text` for non-negative watts."""
    texts = pl.Series("value", watts).cast(pl.Utf8)
    # Most meters report watts; only the others need the decimal form.
    for code, scale, digits in ((UNIT_KW, 1000, 3), (UNIT_MW, 1_000_000, 6)):
        rows = np.flatnonzero(unit_codes == code)
        if len(rows):
            w = pl.Series(watts[rows])
            decimal = (w // scale).cast(pl.Utf8) + "." + (w % scale).cast(pl.Utf8).str.zfill(digits)
            texts = texts.scatter(rows, decimal)
    return texts


def unit_texts(unit_codes: np.ndarray) -> pl.Series:
    return pl.Series("unit", UNITS).gather(unit_codes)
