"""The lake's meter_daily row of each meter with a winning reading on the day (SPEC §5).

energy_kwh = Σ usable kW × 0.25 h; peak_kwh the same over PEAK readings; max, mean
and variance (ddof = 1) over usable readings; grade counts and mean score over
every winning reading; the fault statistics as scored. §3b: estimated_slots and
energy_kwh_estimated (Σ estimated kW × 0.25 h) beside them, 0 for a meter without
estimates; estimates never enter energy_kwh or any statistic of the readings.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from greenstream_dagster.rules.estimation import meter_estimates
from greenstream_dagster.rules.schemas import METER_DAILY_COLUMNS
from greenstream_dagster.rules.usable import is_usable
from greenstream_dagster.rules.values import exact_sum

HOURS_PER_READING = 0.25
def meter_daily(scored_readings: pl.DataFrame, meters: pl.DataFrame, day: date,
                estimates: pl.DataFrame) -> pl.DataFrame:
    """One row per meter with a winning reading; `estimates` (ESTIMATE_COLUMNS) of the same day."""
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
        .join(meter_estimates(estimates), on="meter_id", how="left")
        .with_columns(pl.col("estimated_slots").fill_null(0), pl.col("energy_kwh_estimated").fill_null(0.0))
        .with_columns(pl.lit(day).alias("date"))
        .select(list(METER_DAILY_COLUMNS))
        .sort("meter_id")
        .collect()
    )
    return daily.cast(pl.Schema(METER_DAILY_COLUMNS))
