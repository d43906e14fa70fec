"""Usable reading (SPEC §2): a winning reading with a non-null, in-range value_kw and no validation error.

Only usable readings feed the fault statistics.
"""

import polars as pl


def is_usable() -> pl.Expr:
    return (
        pl.col("value_kw").is_not_null()
        & ~pl.col("out_of_range")
        & (pl.col("validation_errors").list.len() == 0)
    )
