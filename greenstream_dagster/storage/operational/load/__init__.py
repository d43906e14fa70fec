"""Load one partition day into the operational store, idempotently (SPEC §5).

The day's readings, quarantine rows and revisions are bulk-copied (Arrow to
COPY BINARY) into tables of the `load_staging` schema; then, in ONE transaction, each table's day partition is made to
mirror its input (mirror.py):

* A day without a partition yet (first load) gets one built aside: a table
  shaped like the partition is made in the load's transaction and filled on
  its connection by COPY FREEZE, its key index is built in one sort, and it is
  attached with ATTACH PARTITION (a lock that does not block readers or other
  days' loads), then analyzed. Every row is inserted, written once: frozen, so
  no VACUUM rewrites the day, and, with wal_level=minimal (the embedded
  server), without WAL (first_load.py).
* A day that has a partition is merged: the rows that are new or differ are
  found by a parallel hash join on the key, then written by
  `INSERT … ON CONFLICT (key) DO UPDATE … WHERE (…) IS DISTINCT FROM (…)`
  (every column but loaded_at). Identical rows are never touched, so a re-load
  of identical input changes zero rows and keeps their loaded_at, and a
  re-score updates exactly the rows that differ. Filtering first matters: ON
  CONFLICT DO UPDATE locks (writes) every conflicting row even when its WHERE
  is false. Rows of the day no longer in the input are then deleted (the
  anti-join runs only when the counts show there is something to delete;
  merge.py).
* A day loaded before with a digest of what it holds (changed_rows.py) is
  sent only what changed: new readings are COPYed straight into the
  partition, inside the transaction (a filling day gains half a million a
  run; staging them first and INSERTing them cost half as much again),
  differing ones go by the upsert above, gone ones are deleted by key
  (changes.py).

The day's estimates of short gaps (SPEC §3b) go into estimated_readings in the
same transaction: a few thousand rows, copied whole into a temporary table and
mirrored (withdrawn when gone, upserted where they differ; estimates.py).

Merge staging tables are UNLOGGED (no WAL; unlike TEMP tables, parallel
workers can scan them; staging_tables.py, filled by bulk_copy.py). A session
advisory lock per day keeps two loads of the same day apart (runs of a
partition should never overlap anyway, SPEC §6). What a load is given and what
it returns: day_load.py.
"""

from __future__ import annotations

import os
import time

from greenstream_dagster.storage.operational.load.changes import fetch_previous_load_name
from greenstream_dagster.storage.operational.load.day_load import DayLoad, LoadPart, LoadResult
from greenstream_dagster.storage.operational.load.digest_keeper import DigestKeeper
from greenstream_dagster.storage.operational.load.mirror import Mirror, day_locked, mirror
from greenstream_dagster.storage.operational.store import OperationalStore

__all__ = ["DayLoad", "LoadPart", "LoadResult", "fetch_previous_load_name", "load_partition"]


def load_partition(store: OperationalStore, load: DayLoad, *, copy_connections: int | None = None) -> LoadResult:
    """Make the day's partitions of meter_readings, rejected_readings and reading_revisions
    mirror the load's parts (and estimated_readings its estimates, when it has them).

    Readings the input no longer has are deleted and kept in removed_readings with the
    load's `run_id` (SPEC §5: never removed silently); estimates gone from the input are
    withdrawn (deleted and counted). The others are written only where they differ, so an
    identical re-load changes no row and keeps loaded_at and estimated_at. With a previous
    load's digest only the readings that changed are sent (see DayLoad). `copy_connections`:
    parallel COPY connections (default: the CPUs, at most 4)."""
    started = time.perf_counter()
    connections = copy_connections or min(os.cpu_count() or 1, 4)
    with (DigestKeeper(load.keep_digest) as keeper, store.connect(autocommit=True) as conn,
          day_locked(conn, load.day)):
        mirrored = mirror(conn, store, load, connections, keeper)
        merged = time.perf_counter()
    return _result(load, mirrored, started, merged)


def _result(load: DayLoad, mirrored: Mirror, started: float, merged: float) -> LoadResult:
    estimates = mirrored.estimates
    return LoadResult(
        partition_date=load.day,
        parts=load.parts,
        inserted=mirrored.readings.inserted,
        updated=mirrored.readings.updated,
        unchanged=mirrored.readings.unchanged,
        deleted=mirrored.readings.deleted,
        rejected_rows=mirrored.rejected.rows,
        rejected_changed=mirrored.rejected.changed,
        revision_rows=mirrored.revisions.rows,
        revisions_changed=mirrored.revisions.changed,
        stage_seconds=round(mirrored.staged - started, 3),
        merge_seconds=round(merged - mirrored.staged, 3),
        seconds=round(merged - started, 3),
        readings_copied=mirrored.copied,
        digest=mirrored.digest,
        digest_name=mirrored.digest_name,
        estimate_rows=estimates.rows if estimates else 0,
        estimates_inserted=estimates.inserted if estimates else 0,
        estimates_updated=estimates.updated if estimates else 0,
        estimates_withdrawn=estimates.deleted if estimates else 0,
    )
