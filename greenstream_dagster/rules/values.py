"""Value and unit standardization (SPEC §2).

`value_kw` = value × unit factor, rounded to 4 decimal places half to even, on
the exact decimal value as uploaded: binary floats would round ties such as
0.25 W = 0.00025 kW the wrong way. The decimal text is split into an integer
of digits and a power of ten, so the rounding is integer arithmetic; only
values with more than 37 significant digits fall back to float rounding.
"""

from __future__ import annotations

import polars as pl

VALUE_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_VALUE_PARTS = r"^(?<sign>[+-]?)(?<int>[0-9]*)\.?(?<frac>[0-9]*)(?:[eE](?<exp>[+-]?[0-9]+))?$"
# Allowed units as powers of ten to kW; exact and case-sensitive (`mW` is not `MW`).
UNIT_EXPONENTS = {"W": -3, "kW": 0, "MW": 3}
DECIMALS = 4
_MAX_DIGITS = 37  # Int128 holds 38 digits; 2 × remainder must fit too


def value_is_valid(value: pl.Expr) -> pl.Expr:
    return value.str.contains(VALUE_PATTERN)


def unit_is_allowed(unit: pl.Expr) -> pl.Expr:
    return unit.is_in(list(UNIT_EXPONENTS))


def value_kw(value: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """Value text and unit → kW rounded half to even to 4 places; null when either is missing or invalid."""
    parts = value.str.extract_groups(_VALUE_PARTS)
    whole, frac = parts.struct.field("int"), parts.struct.field("frac")
    negative = parts.struct.field("sign") == "-"
    digit_text = (whole + frac).str.strip_chars_start("0")
    n_digits = digit_text.str.len_chars().cast(pl.Int64)
    unit_exp = unit.replace_strict(UNIT_EXPONENTS, default=None, return_dtype=pl.Int64)
    exponent = parts.struct.field("exp").cast(pl.Int64, strict=False).fill_null(0)
    # value_kw × 10^4 = digits × 10^shift, with shift = power of the last digit + 4.
    shift = exponent - frac.str.len_chars().cast(pl.Int64) + unit_exp + DECIMALS
    exact = (shift >= -_MAX_DIGITS) & (n_digits + shift.clip(lower_bound=0) <= _MAX_DIGITS)
    digits = pl.when(exact).then(digit_text.replace("", "0")).otherwise(pl.lit("0")).cast(pl.Int128)
    ten = pl.lit(10, dtype=pl.Int128)
    divisor = ten.pow(pl.when(exact & (shift < 0)).then(-shift).otherwise(0))
    quotient, remainder = digits // divisor, digits % divisor
    round_up = (2 * remainder > divisor) | ((2 * remainder == divisor) & (quotient % 2 == 1))
    scaled = pl.when(shift >= 0).then(
        digits * ten.pow(pl.when(exact & (shift > 0)).then(shift).otherwise(0))
    ).otherwise(quotient + round_up.cast(pl.Int128))
    # Beyond 37 digits: parse with the unit folded into the exponent, then round the float.
    float_kw = pl.concat_str(
        pl.when(negative).then(pl.lit("-")).otherwise(pl.lit("")),
        pl.lit("0"), whole, pl.lit("."), frac, pl.lit("0e"), (exponent + unit_exp).cast(pl.Utf8),
    ).cast(pl.Float64, strict=False).round(DECIMALS, mode="half_to_even")
    kw = pl.when(exact).then(_scaled_to_float(scaled, negative)).otherwise(float_kw)
    usable_input = value_is_valid(value) & unit_exp.is_not_null()
    # A zero keeps no sign: "-0" and "-0.00001" are 0.0 kW, not -0.0.
    return pl.when(~usable_input).then(None).when(kw == 0).then(0.0).otherwise(kw)


def _scaled_to_float(scaled: pl.Expr, negative: pl.Expr) -> pl.Expr:
    """Integer count of 10^-4 kW → the nearest float, through decimal text.

    Polars divides a column by a constant as a multiplication by its
    reciprocal, which is off by one ulp for values such as 2830 / 10^4;
    parsing the decimal text is correctly rounded.
    """
    digits = scaled.cast(pl.Utf8).str.zfill(DECIMALS + 1)
    text = pl.concat_str(
        pl.when(negative).then(pl.lit("-")).otherwise(pl.lit("")),
        digits.str.head(-DECIMALS), pl.lit("."), digits.str.tail(DECIMALS),
    )
    return text.cast(pl.Float64)


def validation_errors(value: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """INVALID_VALUE and UNIT_NOT_ALLOWED for present-but-bad fields; a missing field is neither."""
    return pl.concat_list(
        pl.when(value.is_not_null() & ~value_is_valid(value)).then(pl.lit("INVALID_VALUE")),
        pl.when(unit.is_not_null() & ~unit_is_allowed(unit)).then(pl.lit("UNIT_NOT_ALLOWED")),
    ).list.drop_nulls()


def out_of_range(kw: pl.Expr, min_kw: float, max_kw: float) -> pl.Expr:
    """Physical range on the rounded value; false when value_kw is null."""
    return kw.is_not_null() & ((kw < min_kw) | (kw > max_kw))
