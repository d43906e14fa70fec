"""A load of one partition day: what it is given (`DayLoad`) and what it did (`LoadResult`)."""

from __future__ import annotations

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

LOAD_TABLES = (READINGS, REJECTED, REVISIONS)  # the three tables every load mirrors, in the order loaded


@dataclass(frozen=True)
class LoadPart:
    """One part of a day's load: the readings, quarantine rows and revisions of a set of meters
    (a meter shard, SPEC §10), following SCORED_COLUMNS, REJECTED_COLUMNS and REVISION_COLUMNS.
    Every row of an interval key is in one part, so the parts never share a key."""

    readings: pl.DataFrame
    rejected: pl.DataFrame
    revisions: pl.DataFrame

    def frame(self, table: LoadTable) -> pl.DataFrame:
        return {READINGS.name: self.readings, REJECTED.name: self.rejected, REVISIONS.name: self.revisions}[table.name]

    def conformed(self, day: date) -> LoadPart:
        """Each frame in contract order and sorted by key; a frame that breaks its contract (a
        column, a dtype, a row of another day) is a ValueError naming its table."""
        return LoadPart(*(conform(table, self.frame(table), day) for table in LOAD_TABLES))


@dataclass(frozen=True, eq=False)
class DayLoad:
    """The inputs of one day's load: its frames whole (`readings`, `rejected`, `revisions`), or
    `parts` parts read one at a time by `read_part`, so that the process holds one part, not the
    day (SPEC §10: a day of a million meters is loaded in its shards' memory)."""

    day: date
    readings: pl.DataFrame | None = None
    rejected: pl.DataFrame | None = None
    revisions: pl.DataFrame | None = None
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
    # Stores the digest of each part (part index, digest) while the load runs, in a thread of its
    # own: the load commits only once every one is stored, so `day_loads` never names a digest
    # that was not stored.
    keep_digest: Callable[[int, pl.DataFrame], None] | None = None
    parts: int = 1
    read_part: Callable[[int], LoadPart] | None = None  # None: the one part is the frames above

    def __post_init__(self) -> None:
        whole = self.readings is not None and self.rejected is not None and self.revisions is not None
        if whole == (self.read_part is not None) or (whole and self.parts != 1) or self.parts < 1:
            raise ValueError("a DayLoad has its three frames (one part) or read_part and its number of parts")

    def part(self, index: int) -> LoadPart:
        """Part `index` (0 … parts-1), conformed (see LoadPart.conformed)."""
        if self.read_part is None:
            assert self.readings is not None and self.rejected is not None and self.revisions is not None
            return LoadPart(self.readings, self.rejected, self.revisions).conformed(self.day)
        return self.read_part(index).conformed(self.day)

    def conformed_estimates(self) -> pl.DataFrame | None:
        return conform(ESTIMATES, self.estimates, self.day) if self.estimates is not None else None


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
    parts: int = 1  # the parts (meter shards) the load was sent in, one at a time
    # The digest of a one-part load (see changed_rows.py); a load in parts hands each part's to keep_digest.
    digest: pl.DataFrame | None = field(default=None, repr=False, compare=False)
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
