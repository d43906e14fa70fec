"""Estimation of short gaps, the E of VEE (SPEC §3b).

Per meter and day D, a **gap run** is a maximal run of consecutive slots of D
(floor(reading_ts, 15 min)) without a placeable row, bounded on both sides,
within D, by a slot holding a usable reading. A run of at most
`max_estimate_slots` slots (0: estimation off) is filled by linear
interpolation of value_kw between the two bounding readings, at the slot
starts, rounded like §2 (half to even, 4 places).

Decisions where the spec is silent:
- The bounding readings are the left slot's *last* usable reading and the right
  slot's *first* one (the readings nearest to the run), interpolated at their
  actual reading_ts, which need not be a slot start.
- A bounding slot whose placeable readings are all unusable does not bound the
  run: the run is not estimated (nothing trustworthy to interpolate from).
- A run touching the day's first or last slot has no slot of D on that side, so
  it is not estimated: a day's estimates depend on that day alone, which keeps
  late data local to one day and lets a shard compute its meters alone (§10).

Winning readings stand for the placeable rows (every placeable row's key has a
winner), as in the gap rule. Estimates are not readings: nothing here feeds
the fault statistics or the grades.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import polars as pl

from greenstream_dagster.rules.meter_day_stats import SLOT_SECONDS
from greenstream_dagster.rules.reading_order import READING_ORDER, in_order
from greenstream_dagster.rules.schemas import ESTIMATE_COLUMNS
from greenstream_dagster.rules.usable import is_usable
from greenstream_dagster.rules.values import DECIMALS, divided_half_even, exact_sum, rounded_kw

METHOD = "LINEAR"
_SLOT_US = SLOT_SECONDS * 1_000_000
SLOTS_PER_DAY = 24 * 3600 // SLOT_SECONDS
_EXACT_KW = 1e12


def short_gap_estimates(readings: pl.DataFrame | pl.LazyFrame, day: date, max_estimate_slots: int) -> pl.LazyFrame:
    """Day D's winning readings (any order, other days ignored) → ESTIMATE_COLUMNS, one row per
    estimated slot, sorted by meter and slot."""
    if max_estimate_slots == 0:
        return pl.LazyFrame(schema=ESTIMATE_COLUMNS)
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    slotted = _meters_with_short_runs(readings.lazy().filter(pl.col("partition_date") == day).select(
        "meter_id", "reading_ts", "value_kw", is_usable().alias("usable"),
        ((pl.col("reading_ts") - start).dt.total_microseconds() // _SLOT_US).alias("slot"),
    ).collect(), max_estimate_slots).lazy()
    # Runs lie between two consecutive occupied slots of a meter: only those of short runs are looked at further.
    occupied = slotted.select("meter_id", "slot").unique().sort("meter_id", "slot")
    same_meter = pl.col("meter_id").shift(-1) == pl.col("meter_id")
    runs = occupied.with_columns(pl.col("slot").shift(-1).alias("right_slot")).filter(
        same_meter & (pl.col("right_slot") - pl.col("slot") - 1).is_between(1, max_estimate_slots)
    ).select("meter_id", pl.col("slot").alias("left_slot"), "right_slot")
    usable = slotted.filter(pl.col("usable")).join(runs.select("meter_id").unique(), on="meter_id", how="semi")
    left = usable.group_by("meter_id", "slot").agg(
        pl.col("reading_ts").max().alias("from_reading_ts"),
        pl.col("value_kw").sort_by("reading_ts").last().alias("from_kw"))
    right = usable.group_by("meter_id", "slot").agg(
        pl.col("reading_ts").min().alias("to_reading_ts"),
        pl.col("value_kw").sort_by("reading_ts").first().alias("to_kw"))
    bounded = (
        runs.join(left, left_on=["meter_id", "left_slot"], right_on=["meter_id", "slot"], how="inner")
        .join(right, left_on=["meter_id", "right_slot"], right_on=["meter_id", "slot"], how="inner")
    )
    slot_ts = pl.lit(start) + pl.duration(microseconds=pl.col("slot") * _SLOT_US)
    return (
        bounded.with_columns(pl.int_ranges(pl.col("left_slot") + 1, pl.col("right_slot")).alias("slot"))
        .explode("slot", empty_as_null=False)
        .with_columns(slot_ts.alias("slot_ts"))
        .with_columns(_interpolated_kw().alias("value_kw"))
        .with_columns(
            pl.lit(day).alias("partition_date"),
            # A zero keeps no sign, as in §2.
            pl.when(pl.col("value_kw") == 0).then(0.0).otherwise(pl.col("value_kw")).alias("value_kw"),
            pl.lit(METHOD).alias("method"),
        )
        .select(list(ESTIMATE_COLUMNS))
        .sort("meter_id", "slot_ts")
        .cast(pl.Schema(ESTIMATE_COLUMNS))
    )


def _meters_with_short_runs(slotted: pl.DataFrame, max_estimate_slots: int) -> pl.DataFrame:
    """The rows of the meters that may have a short run: a few percent of a day, found in one pass.

    In reading order (the scored day is), a short run shows as two neighbouring rows of a meter
    whose slots are 2 to max + 1 apart; those meters' rows are then sliced out by binary search.
    The exact rule runs on them alone: the day's other 97 % never reach a group-by or a sort.
    """
    if not in_order(slotted, READING_ORDER):
        slotted = slotted.sort(list(READING_ORDER))
    step = pl.col("slot").shift(-1) - pl.col("slot")
    maybe = (pl.col("meter_id").shift(-1) == pl.col("meter_id")) & step.is_between(2, max_estimate_slots + 1)
    meters = slotted.filter(maybe)["meter_id"].unique().sort()
    if meters.is_empty():
        return slotted.clear()
    ids = slotted["meter_id"]
    first, end = ids.search_sorted(meters, side="left"), ids.search_sorted(meters, side="right")
    rows = pl.int_ranges(pl.lit(first), pl.lit(end)).explode(empty_as_null=False)
    return slotted[pl.select(rows).to_series()]


def _interpolated_kw() -> pl.Expr:
    """from_kw + (to_kw − from_kw) × (slot_ts − from) / (to − from), rounded half to even to 4 places.

    Both bounds are 4-decimal kW and the times whole microseconds, so the exact value is a
    fraction of integers: rounded exactly (a run of three slots puts quarter steps between two
    readings, ties at the 5th decimal are common), as §2 rounds the decimal text. Bounds beyond
    10^12 kW, far outside any physical range, would not fit Int128 and take float rounding.
    """
    def scaled(column: str) -> pl.Expr:
        return (pl.col(column) * 10**DECIMALS).round(0).cast(pl.Int128)

    elapsed = (pl.col("slot_ts") - pl.col("from_reading_ts")).dt.total_microseconds().cast(pl.Int128)
    span = (pl.col("to_reading_ts") - pl.col("from_reading_ts")).dt.total_microseconds().cast(pl.Int128)
    numerator = scaled("from_kw") * span + (scaled("to_kw") - scaled("from_kw")) * elapsed
    negative = numerator < 0  # half to even is symmetric about zero (Int128 has no negation: 0 − n)
    magnitude = divided_half_even(pl.when(negative).then(pl.lit(0, pl.Int128) - numerator).otherwise(numerator), span)
    # Parsed from its decimal text, as §2 does: a division by 10^4 in floats is not always the nearest double.
    exact = pl.concat_str(pl.when(negative).then(pl.lit("-")).otherwise(pl.lit("")), magnitude.cast(pl.Utf8),
                          pl.lit(f"e-{DECIMALS}")).cast(pl.Float64)
    share = elapsed.cast(pl.Float64) / span.cast(pl.Float64)
    approximate = rounded_kw(pl.col("from_kw") + (pl.col("to_kw") - pl.col("from_kw")) * share)
    small = (pl.col("from_kw").abs() <= _EXACT_KW) & (pl.col("to_kw").abs() <= _EXACT_KW)
    return pl.when(small).then(exact).otherwise(approximate)


def meter_estimates(estimates: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Per meter with estimates: `estimated_slots` and `energy_kwh_estimated` (Σ estimated kW × 0.25 h)."""
    return estimates.lazy().group_by("meter_id").agg(
        pl.len().cast(pl.UInt32).alias("estimated_slots"),
        # Times the hours, not divided by 3600: see values._per.
        (exact_sum(pl.col("value_kw")) * (SLOT_SECONDS / 3600)).alias("energy_kwh_estimated"),
    )


@dataclass(frozen=True)
class EstimationSummary:
    """The day's estimation at a glance (the `estimation` check, §3b)."""

    estimated_slots: int
    meters_with_estimates: int
    meters: int  # meters with a placeable row on the day
    missing_slots: int  # meter-slots of those meters still without a placeable row or an estimate

    @property
    def missing_slot_share(self) -> float:
        """Share of the day's meter-slots (96 per meter) still missing after estimation."""
        return self.missing_slots / (SLOTS_PER_DAY * self.meters) if self.meters else 0.0


def summarize_estimation(estimates: pl.DataFrame, meter_stats: pl.DataFrame) -> EstimationSummary:
    """`meter_stats`: the day's METER_DAY_STATS_COLUMNS (its `slots`: slots with a placeable row).

    Silent meters (no row on the day) are not counted: they are the fleet's concern (§3a)."""
    placed = int(meter_stats["slots"].sum()) if meter_stats.height else 0
    return EstimationSummary(
        estimated_slots=estimates.height,
        meters_with_estimates=estimates["meter_id"].n_unique() if estimates.height else 0,
        meters=meter_stats.height,
        missing_slots=SLOTS_PER_DAY * meter_stats.height - placed - estimates.height,
    )
