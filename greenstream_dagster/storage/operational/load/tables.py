"""The four tables a load mirrors, as the load sees them, and what mirroring one of them did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl

from greenstream_dagster.rules.reading_order import sorted_by
from greenstream_dagster.rules.record_id import with_record_id
from greenstream_dagster.rules.schemas import (
    ESTIMATE_COLUMNS,
    METER_READING_COLUMNS,
    REJECTED_COLUMNS,
    REVISION_COLUMNS,
    SCORED_COLUMNS,
)


@dataclass(frozen=True)
class LoadTable:
    """An operational table as the load sees it: the contract of its input frame, its key, and
    the columns it stores (the input's, plus any the load derives)."""

    name: str
    given: dict[str, pl.DataType]
    key: tuple[str, ...]
    stored: dict[str, pl.DataType]
    derive: Callable[[pl.DataFrame], pl.DataFrame] | None = None  # given → stored columns, on what is copied
    stamp: str = "loaded_at"  # set to now() when a row is written, and only then

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.stored)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.key)

    @property
    def given_values(self) -> list[str]:
        return [c for c in self.given if c not in self.key]


def _with_content_id(readings: pl.DataFrame) -> pl.DataFrame:
    """Readings come without their record_id: it is derived here, for the rows actually copied."""
    return with_record_id(readings).select(list(METER_READING_COLUMNS))


READINGS = LoadTable("meter_readings", SCORED_COLUMNS, ("meter_id", "reading_ts", "partition_date"),
                     METER_READING_COLUMNS, derive=_with_content_id)
REJECTED = LoadTable("rejected_readings", REJECTED_COLUMNS, ("partition_date", "source_key", "source_line"),
                     REJECTED_COLUMNS)
REVISIONS = LoadTable(
    "reading_revisions", REVISION_COLUMNS, ("partition_date", "meter_id", "reading_ts", "record_id"), REVISION_COLUMNS
)
# SPEC §3b: a few thousand rows a day, mirrored whole in the load's transaction.
ESTIMATES = LoadTable("estimated_readings", ESTIMATE_COLUMNS, ("meter_id", "slot_ts", "partition_date"),
                      ESTIMATE_COLUMNS, stamp="estimated_at")


@dataclass(frozen=True)
class Mirrored:
    """What making one table's day partition mirror its input did."""

    inserted: int
    updated: int
    unchanged: int
    deleted: int

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


def conform(table: LoadTable, frame: pl.DataFrame, day: date) -> pl.DataFrame:
    """The frame in contract column order, sorted by key; a missing column, a wrong dtype or a
    row of another day is an error naming the table (it would otherwise be an obscure COPY error)."""
    missing = [c for c in table.given if c not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: the frame lacks column(s) {missing}")
    for name, dtype in table.given.items():
        if frame.schema[name] != dtype:
            raise ValueError(f"{table.name}.{name}: expected dtype {dtype}, got {frame.schema[name]}")
    other_days = frame.filter(pl.col("partition_date") != day).height
    if other_days:
        raise ValueError(f"{table.name}: {other_days} row(s) have a partition_date other than {day}")
    # Key order clusters a day partition by meter and keeps index inserts local.
    # COPY BINARY needs the column's exact type: quality_score is a smallint.
    frame = sorted_by(frame.select(list(table.given)), list(table.key))
    return frame.with_columns(pl.col("quality_score").cast(pl.Int16)) if table is READINGS else frame


def duplicate_keys(table: LoadTable) -> ValueError:
    return ValueError(f"{table.name}: the frame holds two rows with the same key {table.key}")
