"""Under the day's load lock: stage the frames, then make each day partition mirror its frame in
ONE transaction (a first load attaches, a re-load merges or applies the digest's changes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import polars as pl
import psycopg
from psycopg import sql

from greenstream_dagster.storage.operational.changed_rows import Changes
from greenstream_dagster.storage.operational.load.bulk_copy import copy_to_staging
from greenstream_dagster.storage.operational.load.changes import apply_changes, changes_to_send, create_gone, record_load
from greenstream_dagster.storage.operational.load.day_load import DayLoad
from greenstream_dagster.storage.operational.load.estimates import mirror_estimates
from greenstream_dagster.storage.operational.load.first_load import attach, freeze
from greenstream_dagster.storage.operational.load.merge import merge
from greenstream_dagster.storage.operational.load.staging_tables import create_staging, drop_staged
from greenstream_dagster.storage.operational.load.tables import (
    ESTIMATES,
    READINGS,
    REJECTED,
    REVISIONS,
    LoadTable,
    Mirrored,
)
from greenstream_dagster.storage.operational.partitions import day_partition_exists, ensure_day_partitions, partition_name
from greenstream_dagster.storage.operational.store import OperationalStore

# Per load transaction: the diff's parallel hash join and the key index build in memory.
_TRANSACTION_SETTINGS = {"work_mem": "256MB", "hash_mem_multiplier": "2", "maintenance_work_mem": "512MB"}
_LOAD_LOCK = 0x6C6F6164  # advisory lock namespace of "load of a partition day"


@dataclass(frozen=True)
class Mirror:
    """What a load under the day's lock did: each table's result, the readings copied, when
    staging ended, and the digest name the day's load record names now."""

    readings: Mirrored
    rejected: Mirrored
    revisions: Mirrored
    estimates: Mirrored | None  # SPEC §3b, when the load was given estimates
    copied: int
    staged: float  # time.perf_counter() when staging ended and the transaction began
    digest_name: str | None


@contextmanager
def day_locked(conn: psycopg.Connection, day: date) -> Iterator[None]:
    """The day's load lock held on `conn`; on the way out the load's scratch tables are dropped
    and the lock released (a lost session has released its lock already; its scratch stays for
    the next load, which drops it first)."""
    lock = (_LOAD_LOCK, day.toordinal())
    conn.execute("SELECT pg_advisory_lock(%s, %s)", lock)
    try:
        yield
    finally:
        if not conn.broken:
            drop_staged(conn, day, (READINGS, REJECTED, REVISIONS))
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)


def mirror(conn: psycopg.Connection, store: OperationalStore, load: DayLoad, digest: pl.DataFrame | None,
           copy_connections: int, digest_stored: Callable[[], object]) -> Mirror:
    """Stage the (conformed) load's frames, then make the partitions mirror them in one
    transaction, committed only once `digest_stored` has returned (the digest's upload)."""
    day = load.day
    fresh = {t.name: not day_partition_exists(conn, t.name, day) for t, _ in load.tables}
    changes = None if fresh[READINGS.name] else changes_to_send(conn, day, load.previous, load.readings, digest)
    copied = _stage(conn, store, load, fresh, changes, copy_connections)
    if load.estimates is not None:
        ensure_day_partitions(conn, day, (ESTIMATES.name,))
    staged = time.perf_counter()
    with conn.transaction():
        for name, value in _TRANSACTION_SETTINGS.items():
            conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        readings, rejected, revisions = (_write(conn, load, table, frame.height, fresh[table.name], changes)
                                         for table, frame in load.tables)
        estimated = mirror_estimates(conn, day, load.estimates) if load.estimates is not None else None
        digest_name = load.digest_name
        if changes is not None and not readings.changed:
            digest_name = load.previous.name  # the same readings: the day's load record stays as it is (SPEC §5)
        elif digest_name is not None:
            record_load(conn, day, digest_name, load.readings.height)
        digest_stored()  # stored before the load that names it commits
    freeze(conn, [t for t, _ in load.tables if fresh[t.name]], day)
    return Mirror(readings, rejected, revisions, estimated, copied, staged, digest_name)


def _stage(conn: psycopg.Connection, store: OperationalStore, load: DayLoad, fresh: dict[str, bool],
           changes: Changes | None, copy_connections: int) -> int:
    """Each table's staging table, filled by COPY; returns the readings sent to PostgreSQL (with
    `changes`, only the changed ones: the new go straight into the partition, in the transaction)."""
    copied = 0
    for table, frame in load.tables:
        create_staging(conn, table, load.day, fresh[table.name])
        if table is READINGS and changes is not None:
            frame = changes.updates
            create_gone(conn, store, load.day, changes.deleted_keys, copy_connections)
            copied += changes.inserts.height  # copied in the transaction, straight into the partition
        copy_to_staging(store, partition_name(table.name, load.day), frame, copy_connections, table.derive)
        copied += frame.height if table is READINGS else 0
    return copied


def _write(conn: psycopg.Connection, load: DayLoad, table: LoadTable, rows: int, fresh: bool,
           changes: Changes | None) -> Mirrored:
    """Inside the transaction: the day partition of `table` becomes its staged frame of `rows`
    (`changes`, found against `load.previous`, stand for the readings' frame)."""
    if fresh:
        return attach(conn, table, load.day, rows)
    if table is READINGS and changes is not None:
        return apply_changes(conn, load.day, rows, changes, load.run_id, stored_before=load.previous.digest.height)
    return merge(conn, table, load.day, rows, load.run_id)
