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
_VALUE_PARTS = r"^(?<_v_sign>[+-]?)(?<_v_int>[0-9]*)\.?(?<_v_frac>[0-9]*)(?:[eE](?<_v_exp>[+-]?[0-9]+))?$"
# Allowed units as powers of ten to kW; exact and case-sensitive (`mW` is not `MW`).
UNIT_EXPONENTS = {"W": -3, "kW": 0, "MW": 3}
DECIMALS = 4
_MAX_DIGITS = 37  # Int128 holds 38 digits; 2 × remainder must fit too
# Exponents are clamped to ±10^15: far beyond any double (10^±330) and any digit count a line
# can hold, so the clamp never changes a result, and the shift arithmetic stays in Int64.
_MAX_EXPONENT_DIGITS = 15


def _exponent(text: pl.Expr) -> pl.Expr:
    """The exponent's value, exact up to ±10^15 and clamped beyond (never dropped to 0)."""
    magnitude = text.str.strip_chars_start("+-").str.strip_chars_start("0")
    value = (
        pl.when(magnitude.str.len_chars() > _MAX_EXPONENT_DIGITS).then(pl.lit(10**_MAX_EXPONENT_DIGITS, pl.Int64))
        .otherwise(magnitude.replace("", "0").cast(pl.Int64))
    )
    return pl.when(text.is_null()).then(0).when(text.str.starts_with("-")).then(-value).otherwise(value)


def divided_half_even(numerator: pl.Expr, divisor: pl.Expr) -> pl.Expr:
    """numerator / divisor rounded half to even, in exact Int128 arithmetic (numerator ≥ 0, divisor > 0)."""
    quotient, remainder = numerator // divisor, numerator % divisor
    round_up = (2 * remainder > divisor) | ((2 * remainder == divisor) & (quotient % 2 == 1))
    return quotient + round_up.cast(pl.Int128)


def exact_sum(kw: pl.Expr) -> pl.Expr:
    """Σ kW, exact: summed as whole ten-thousandths of a kW (value_kw has DECIMALS places),
    then scaled back once.

    A floating-point sum depends on the order (and Polars' kernel on the layout) of
    its terms, and staged readings come in no fixed order (a re-done meter is
    appended), so the same readings would give other bits and an identical re-run
    would rewrite the lake day (SPEC §5). Integers add up the same in any order.
    """
    scale = 10**DECIMALS
    return (kw * scale).round().cast(pl.Int64).sum() * _per(scale)


def _units(kw: pl.Expr) -> pl.Expr:
    """kW as whole ten-thousandths (value_kw has DECIMALS places), wide enough for sums of squares."""
    return (kw * 10**DECIMALS).round().cast(pl.Int128)


def _per(divisor: float) -> float:
    """A constant to multiply by instead of dividing by `divisor`. Polars divides a column by a
    constant as a multiplication by its reciprocal, but a group's lone value (a group_by of one
    group, as a small shard may have) by true division: the last bit then depends on how many
    meters were aggregated together. Multiplying is one operation on every path."""
    return 1.0 / divisor


def exact_mean(kw: pl.Expr) -> pl.Expr:
    """Mean kW from the exact sum: the same bits in any order of the terms (see exact_sum); null of no value."""
    n = kw.count()
    return pl.when(n > 0).then(_units(kw).sum().cast(pl.Float64) / n.cast(pl.Float64) * _per(10**DECIMALS))


def exact_squared_deviations(kw: pl.Expr) -> pl.Expr:
    """Σ (kW − mean)², from exact integer sums: n·Σx² − (Σx)² is computed in whole units², without
    rounding, so neither the order of the terms nor cancellation changes it; scaled back once."""
    x = _units(kw)
    n = x.count().cast(pl.Int128)
    return pl.when(n > 0).then(
        (n * (x * x).sum() - x.sum() * x.sum()).cast(pl.Float64) / n.cast(pl.Float64) * _per(10 ** (2 * DECIMALS)))


def exact_variance(kw: pl.Expr, ddof: int = 1) -> pl.Expr:
    """The variance (null with at most `ddof` values), from exact_squared_deviations: order-independent,
    so a meter's statistics do not depend on how its readings were split or ordered."""
    n = kw.count()
    return pl.when(n > ddof).then(exact_squared_deviations(kw) / (n - ddof).cast(pl.Float64))


def rounded_kw(kw: pl.Expr) -> pl.Expr:
    """A kW computed in floating point, rounded half to even to 4 places as value_kw is (§2);
    for values derived from readings (the estimates of §3b) as for values beyond 37 digits."""
    return kw.round(DECIMALS, mode="half_to_even")


def value_is_valid(value: pl.Expr) -> pl.Expr:
    return value.str.contains(VALUE_PATTERN)


def unit_is_allowed(unit: pl.Expr) -> pl.Expr:
    return unit.is_in(list(UNIT_EXPONENTS))


def with_value_kw(
    frame: pl.LazyFrame, value: str, unit: str, target: str = "value_kw", overflow: str = "value_overflow"
) -> pl.LazyFrame:
    """Add `target`: value × unit factor in kW, rounded half to even to 4 places; null when
    the value or unit is missing or invalid, or the product is not a finite double (then
    `overflow` is true). Row order is not kept.

    Most readings need no rounding (3250 W is 3.25 kW exactly): their kW text is
    the digits with the exponent shifted, parsed once, correctly rounded. Only
    rows with more than 4 decimals in kW take the integer rounding.
    """
    digits = pl.col("_v_digits")
    shift = pl.col("_v_shift")
    negative = pl.col("_v_sign") == "-"
    sign = pl.when(negative).then(pl.lit("-")).otherwise(pl.lit(""))
    parts = (
        frame.with_columns(
            pl.when(value_is_valid(pl.col(value))).then(pl.col(value)).str.extract_groups(_VALUE_PARTS).alias("_v"),
            pl.col(unit).replace_strict(UNIT_EXPONENTS, default=None, return_dtype=pl.Int64).alias("_v_unit_exp"),
        )
        .unnest("_v")
        .with_columns(
            # value_kw × 10^4 = digits × 10^shift, with shift = power of the last digit + 4.
            # The power of ten of the value's last digit.
            (_exponent(pl.col("_v_exp")) - pl.col("_v_frac").str.len_chars().cast(pl.Int64)).alias("_v_last"),
            (pl.col("_v_int") + pl.col("_v_frac")).str.strip_chars_start("0").replace("", "0").alias("_v_digits"),
        )
        .with_columns((pl.col("_v_last") + pl.col("_v_unit_exp") + DECIMALS).alias("_v_shift"))
    )
    usable = pl.col("_v_digits").is_not_null() & pl.col("_v_unit_exp").is_not_null()
    plain = parts.filter(~usable | (shift >= 0)).with_columns(
        pl.when(usable).then(
            pl.concat_str(sign, digits, pl.lit("e"), (shift - DECIMALS).cast(pl.Utf8)).cast(pl.Float64)
        ).alias("_v_kw")
    )
    rounding = parts.filter(usable & (shift < 0))
    exact = (shift >= -_MAX_DIGITS) & (digits.str.len_chars() <= _MAX_DIGITS)
    big_digits = pl.when(exact).then(digits).otherwise(pl.lit("0")).cast(pl.Int128)
    divisor = pl.lit(10, dtype=pl.Int128).pow(pl.when(exact).then(-shift).otherwise(0))
    scaled = divided_half_even(big_digits, divisor).cast(pl.Utf8)
    # Beyond 37 digits: parse with the unit folded into the exponent, then round the float.
    float_kw = rounded_kw(pl.concat_str(sign, digits, pl.lit("e"), (shift - DECIMALS).cast(pl.Utf8)).cast(pl.Float64))
    rounded = rounding.with_columns(
        pl.when(exact).then(pl.concat_str(sign, scaled, pl.lit("e-4")).cast(pl.Float64)).otherwise(float_kw).alias("_v_kw")
    )
    kw = pl.col("_v_kw")
    return (
        pl.concat([plain, rounded])
        .with_columns(_overflows().alias(overflow))
        # A zero keeps no sign: "-0" and "-0.00001" are 0.0 kW, not -0.0. Not finite: no value.
        .with_columns(pl.when(kw == 0).then(0.0).when(kw.is_infinite()).then(None).otherwise(kw).alias(target))
        .drop("_v_sign", "_v_int", "_v_frac", "_v_exp", "_v_unit_exp", "_v_last", "_v_shift", "_v_digits", "_v_kw")
    )


def _overflows() -> pl.Expr:
    """A valid value whose magnitude × unit factor is not a finite double (SPEC §2: INVALID_VALUE).

    Without an allowed unit the factor is 1: `1e400` is not a finite double in any unit."""
    power = pl.col("_v_last") + pl.col("_v_unit_exp").fill_null(0)
    magnitude = pl.concat_str(pl.col("_v_digits"), pl.lit("e"), power.cast(pl.Utf8)).cast(pl.Float64)
    return pl.col("_v_digits").is_not_null() & magnitude.is_infinite()


def validation_errors(value: pl.Expr, unit: pl.Expr, overflow: pl.Expr | None = None) -> pl.Expr:
    """INVALID_VALUE and UNIT_NOT_ALLOWED for present-but-bad fields; a missing field is neither.

    `overflow` (from `with_value_kw`) marks valid text whose product is not a finite double."""
    bad_value = value.is_not_null() & ~value_is_valid(value)
    if overflow is not None:
        bad_value = bad_value | overflow.fill_null(False)
    bad_unit = unit.is_not_null() & ~unit_is_allowed(unit)

    def errors(*codes: str) -> pl.Expr:
        return pl.lit(list(codes), dtype=pl.List(pl.Utf8))

    # Four literal lists instead of building one per row: almost every row takes the first.
    return (
        pl.when(~bad_value & ~bad_unit).then(errors())
        .when(bad_value & bad_unit).then(errors("INVALID_VALUE", "UNIT_NOT_ALLOWED"))
        .when(bad_value).then(errors("INVALID_VALUE"))
        .otherwise(errors("UNIT_NOT_ALLOWED"))
    )


def out_of_range(kw: pl.Expr, min_kw: float, max_kw: float) -> pl.Expr:
    """Physical range on the rounded value; false when value_kw is null."""
    return kw.is_not_null() & ((kw < min_kw) | (kw > max_kw))
