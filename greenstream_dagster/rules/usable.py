"""Usable reading (SPEC §2): a winning reading with a non-null, in-range value_kw and no validation error.

Only usable readings feed the fault statistics. A validation error always
leaves value_kw null (an invalid value or a unit outside the allow-list has no
kW), so "value_kw present and in range" is the whole test: the fault window
then needs neither the error lists nor the raw text of seven days.
"""

import polars as pl


def within_range() -> pl.Expr:
    """value_kw present and within the physical range (SPEC §4: +20 points)."""
    return pl.col("value_kw").is_not_null() & ~pl.col("out_of_range")


def is_usable() -> pl.Expr:
    return within_range()
