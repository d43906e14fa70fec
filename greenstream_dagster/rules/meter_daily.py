"""The lake's meter_daily row of each meter with a winning reading on the day (SPEC §5).

energy_kwh = Σ usable kW × 0.25 h; peak_kwh the same over PEAK readings; max, mean
and variance (ddof = 1) over usable readings; grade counts and mean score over
every winning reading; the fault statistics as scored.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from greenstream_dagster.rules.schemas import METER_DAILY_COLUMNS
from greenstream_dagster.rules.usable import is_usable

HOURS_PER_READING = 0.25
KW_DECIMALS = 4  # value_kw is rounded to 4 decimal places (SPEC §2)


def exact_sum(kw: pl.Expr) -> pl.Expr:
    """Σ kW, exact: summed as whole ten-thousandths of a kW, then scaled back once.

    A floating-point sum depends on the order (and Polars' kernel on the layout) of
    its terms, and staged readings come in no fixed order (a re-done meter is
    appended), so the same readings would give other bits and an identical re-run
    would rewrite the lake day (SPEC §5). Integers add up the same in any order.
    """
    scale = 10**KW_DECIMALS
    return (kw * scale).round().cast(pl.Int64).sum() / scale


def meter_daily(scored_readings: pl.DataFrame, meters: pl.DataFrame, day: date) -> pl.DataFrame:
    usable_kw = pl.col("value_kw").filter(is_usable())
    peak_kw = pl.col("value_kw").filter(is_usable() & (pl.col("tariff_period") == "PEAK"))
    grade = pl.col("quality_grade")
    daily = (
        scored_readings.lazy()
        .group_by("meter_id")
        .agg(
            pl.len().alias("readings"),
            (exact_sum(usable_kw) * HOURS_PER_READING).alias("energy_kwh"),
            (exact_sum(peak_kw) * HOURS_PER_READING).alias("peak_kwh"),
            usable_kw.max().alias("max_kw"),
            (exact_sum(usable_kw) / usable_kw.count().cast(pl.Float64).replace(0, None)).alias("mean_kw"),
            *[(grade == g).sum().alias(f"grade_{g.lower()}") for g in ("A", "B", "C", "F")],
            pl.col("quality_score").mean().alias("mean_score"),
        )
        .join(meters.lazy(), on="meter_id", how="left")
        .with_columns(pl.lit(day).alias("date"))
        .select(list(METER_DAILY_COLUMNS))
        .sort("meter_id")
        .collect()
    )
    return daily.cast(METER_DAILY_COLUMNS)
