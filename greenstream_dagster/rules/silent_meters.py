"""Silent meters (SPEC §3a): meters that stopped talking.

A meter is **silent** on day D when it has a placeable row on some day of the
look-back D-L..D-1 (L = 30 by default) and none on D; `last_seen` is the last
such day and `silent_days` = D − last_seen. The **known fleet** of D is the
meters seen in the look-back: the denominator of the silent share. A meter
**returns** on D when it has a row on D, none on D-1, and was seen in D-L..D-2
(it was silent yesterday). A **new** meter has its first row ever on D.

Inputs are presence rows (`meter_id`, `partition_date`): any number per meter
and day, so a caller may hand in raw presence or one row per meter with its
latest day of the look-back, which is all these rules read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:  # the alias only: these columns are typed like the contracts', without importing them
    from greenstream_dagster.rules.schemas import Columns

SILENT_COLUMNS: Columns = {
    "partition_date": pl.Date,
    "meter_id": pl.Utf8,
    "last_seen": pl.Date,
    "silent_days": pl.Int32,
}
LONGEST_SILENT_SHOWN = 10


def lookback_first_day(day: date, lookback_days: int) -> date:
    return day - timedelta(days=lookback_days)


def last_seen_in_lookback(presence: pl.LazyFrame, day: date, lookback_days: int) -> pl.LazyFrame:
    """Per meter seen in D-L..D-1: its latest day there (`last_seen`)."""
    first = lookback_first_day(day, lookback_days)
    return (
        presence.filter(pl.col("partition_date").is_between(first, day - timedelta(days=1)))
        .group_by("meter_id")
        .agg(pl.col("partition_date").max().alias("last_seen"))
    )


def silent_meters(lookback: pl.LazyFrame, day_meters: pl.LazyFrame, day: date, lookback_days: int) -> pl.DataFrame:
    """One row per meter silent on `day`, longest silent first (SILENT_COLUMNS).

    `lookback`: presence rows covering D-L..D-1 (other days are ignored);
    `day_meters`: the meters with a placeable row on D (a `meter_id` column).
    """
    return (
        last_seen_in_lookback(lookback, day, lookback_days)
        .join(day_meters.select("meter_id").unique(), on="meter_id", how="anti")
        .select(
            pl.lit(day).alias("partition_date"),
            "meter_id",
            "last_seen",
            (pl.lit(day) - pl.col("last_seen")).dt.total_days().alias("silent_days"),
        )
        .sort(["silent_days", "meter_id"], descending=[True, False])
        .collect()
        .cast(pl.Schema(SILENT_COLUMNS))
    )


@dataclass(frozen=True)
class FleetDay:
    """The fleet's health on one day, as numbers for the asset's plots."""

    known_fleet: int  # meters seen in the look-back
    reporting: int  # meters with a placeable row on D
    silent: int
    new: int
    returning: int
    longest_silent: list[str]

    @property
    def silent_share(self) -> float:
        return self.silent / self.known_fleet if self.known_fleet else 0.0

    def exceeds(self, warn_share: float) -> bool:
        return self.silent_share > warn_share


def fleet_day(lookback: pl.LazyFrame, day_meters: pl.LazyFrame, silent: pl.DataFrame,
              new_meters: pl.LazyFrame, day: date, lookback_days: int) -> FleetDay:
    """Counts of the day. `new_meters`: meters whose first row ever is on D (from the registry)."""
    seen = last_seen_in_lookback(lookback, day, lookback_days)
    today = day_meters.select("meter_id").unique()
    returning = (
        today.join(seen, on="meter_id")
        .filter(pl.col("last_seen") < day - timedelta(days=1))
        .select(pl.len())
    )
    known, reporting, back, new = pl.collect_all([
        seen.select(pl.len()), today.select(pl.len()), returning, new_meters.select(pl.len())])
    return FleetDay(
        known_fleet=known.item(),
        reporting=reporting.item(),
        silent=silent.height,
        new=new.item(),
        returning=back.item(),
        longest_silent=silent["meter_id"].head(LONGEST_SILENT_SHOWN).to_list(),
    )
