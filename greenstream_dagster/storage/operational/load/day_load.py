"""A load of one partition day: what it is given (`DayLoad`) and what it did (`LoadResult`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date

import polars as pl

from greenstream_dagster.storage.operational.changed_rows import PreviousLoad
from greenstream_dagster.storage.operational.load.tables import (
    ESTIMATES,
    READINGS,
    REJECTED,
    REVISIONS,
    LoadTable,
    conform,
)


@dataclass(frozen=True, eq=False)
class DayLoad:
    """The inputs of one day's load. The frames follow SCORED_COLUMNS, REJECTED_COLUMNS and
    REVISION_COLUMNS (each reading's record_id is derived by the load)."""

    day: date
    readings: pl.DataFrame
    rejected: pl.DataFrame
    revisions: pl.DataFrame
    # SPEC §3b, ESTIMATE_COLUMNS: the day's estimated_readings mirror them in the same
    # transaction. None leaves estimated_readings alone.
    estimates: pl.DataFrame | None = None
    run_id: str | None = None  # kept in removed_readings beside each reading the load deletes (SPEC §5)
    # The digest the day's last load left (changed_rows.py): only the readings that changed are
    # sent, when PostgreSQL confirms it still describes the day.
    previous: PreviousLoad | None = None
    # The name the load records for the digest of this input (returned in the result, for the
    # caller to store); None: no digest is made.
    digest_name: str | None = None
    # Stores that digest while the load runs, in a thread of its own: the load commits only once
    # it has returned, so `day_loads` never names a digest that was not stored.
    keep_digest: Callable[[pl.DataFrame], None] | None = None

    @property
    def tables(self) -> tuple[tuple[LoadTable, pl.DataFrame], ...]:
        """The three tables every load mirrors, each with its frame, in the order they are loaded."""
        return (READINGS, self.readings), (REJECTED, self.rejected), (REVISIONS, self.revisions)

    def conformed(self) -> DayLoad:
        """The same load with each frame in contract order and sorted by key; a frame that breaks its
        contract (a column, a dtype, a row of another day) is a ValueError naming its table."""
        readings, rejected, revisions = (conform(table, frame, self.day) for table, frame in self.tables)
        estimates = conform(ESTIMATES, self.estimates, self.day) if self.estimates is not None else None
        return dataclasses.replace(self, readings=readings, rejected=rejected, revisions=revisions,
                                   estimates=estimates)


@dataclass(frozen=True)
class LoadResult:
    """What a load did to the day's partitions; `changed` is 0 for a re-load of identical input."""

    partition_date: date
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    rejected_rows: int
    rejected_changed: int
    revision_rows: int
    revisions_changed: int
    stage_seconds: float
    merge_seconds: float
    seconds: float
    readings_copied: int = 0  # readings sent to PostgreSQL: all of them, or only the changed ones
    # SPEC §3b, when the load was given estimates: rows after the load, and what changed.
    estimate_rows: int = 0
    estimates_inserted: int = 0
    estimates_updated: int = 0  # re-computed: a bounding reading changed
    estimates_withdrawn: int = 0  # deleted: a reading arrived for the slot, or the run is no longer short or bounded
    digest: pl.DataFrame | None = field(default=None, repr=False, compare=False)  # see changed_rows.py
    # The digest the day's load record names after the load: `digest_name`, or the previous
    # load's when the readings did not change (the record is then left untouched).
    digest_name: str | None = None

    @property
    def rows(self) -> int:
        """Readings in the day partition after the load."""
        return self.inserted + self.updated + self.unchanged

    @property
    def changed(self) -> int:
        return (self.inserted + self.updated + self.deleted + self.rejected_changed + self.revisions_changed
                + self.estimates_inserted + self.estimates_updated + self.estimates_withdrawn)

    def as_metadata(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("digest", "digest_name")}
        return {**values, "partition_date": self.partition_date.isoformat(), "rows": self.rows, "changed": self.changed}
