"""Under the day's load lock, in ONE transaction: the load's parts sent one at a time, then each
day partition made to mirror them (a first load attaches, a re-load merges or applies the
digest's changes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import polars as pl
import psycopg
from psycopg import sql

from greenstream_dagster.storage.operational.changed_rows import changes_since, row_digest
from greenstream_dagster.storage.operational.load.bulk_copy import copy_to_staging, copy_within
from greenstream_dagster.storage.operational.load.changes import (
    apply_changes,
    create_gone,
    insert_new,
    record_load,
    stage_changes,
    trusted_previous,
)
from greenstream_dagster.storage.operational.load.day_load import LOAD_TABLES, DayLoad
from greenstream_dagster.storage.operational.load.digest_keeper import DigestKeeper
from greenstream_dagster.storage.operational.load.estimates import mirror_estimates
from greenstream_dagster.storage.operational.load.first_load import attach, freeze
from greenstream_dagster.storage.operational.load.merge import merge
from greenstream_dagster.storage.operational.load.staging_tables import create_staging, drop_staged, staging
from greenstream_dagster.storage.operational.load.tables import (
    ESTIMATES,
    READINGS,
    LoadTable,
    Mirrored,
)
from greenstream_dagster.storage.operational.partitions import day_partition_exists, ensure_day_partitions, partition_name
from greenstream_dagster.storage.operational.store import OperationalStore

# Per load transaction: the diff's parallel hash join and the key index build in memory. The
# index of a first load is one sort of the day's keys: a 24-million-reading day (250,000 meters)
# built it in 26 s with 512MB, spilling, and in 11 s with 2GB (an upper bound, taken as needed).
_TRANSACTION_SETTINGS = {"work_mem": "256MB", "hash_mem_multiplier": "2", "maintenance_work_mem": "2GB"}
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
    staged: float  # time.perf_counter() when every part was sent (inside the transaction)
    digest_name: str | None
    digest: pl.DataFrame | None  # the digest of a one-part load


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
            drop_staged(conn, day, LOAD_TABLES)
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)


def mirror(conn: psycopg.Connection, store: OperationalStore, load: DayLoad, copy_connections: int,
           keeper: DigestKeeper) -> Mirror:
    """Make the day's partitions mirror the load's parts, in one transaction, committed only once
    every part's digest is stored (`keeper`). The parts are read, digested, compared and copied
    one at a time, so the process holds one part, never the day; a load cut short anywhere
    leaves the day as it was (SPEC §10: no half-loaded shard, nor a half-loaded day)."""
    day = load.day
    fresh = {t.name: not day_partition_exists(conn, t.name, day) for t in LOAD_TABLES}
    stored_before = None if fresh[READINGS.name] else trusted_previous(conn, day, load.previous, load.parts)
    for table in LOAD_TABLES:
        if not fresh[table.name]:
            create_staging(conn, table, day, fresh=False)
    if stored_before is not None:
        create_gone(conn, day)
    if load.estimates is not None:
        ensure_day_partitions(conn, day, (ESTIMATES.name,))
    with conn.transaction():
        for name, value in _TRANSACTION_SETTINGS.items():
            conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        for table in LOAD_TABLES:
            if fresh[table.name]:  # made in the transaction, so that its COPY writes frozen rows
                create_staging(conn, table, day, fresh=True)
        sent = _send_parts(conn, store, load, fresh, stored_before is not None, copy_connections, keeper)
        staged = time.perf_counter()
        readings, rejected, revisions = (_write(conn, load, table, sent, fresh[table.name], stored_before)
                                         for table in LOAD_TABLES)
        estimated = mirror_estimates(conn, day, load.conformed_estimates()) if load.estimates is not None else None
        digest_name = load.digest_name
        if stored_before is not None and not readings.changed:
            digest_name = load.previous.name  # the same readings: the day's load record stays as it is (SPEC §5)
        elif digest_name is not None:
            record_load(conn, day, digest_name, sent.rows[READINGS.name], load.parts)
        keeper.wait()  # stored before the load that names it commits
    freeze(conn, [t for t in LOAD_TABLES if fresh[t.name]], day)
    return Mirror(readings, rejected, revisions, estimated, sent.copied, staged, digest_name, sent.digest)


@dataclass
class _Sent:
    """What the parts sent, added up: rows of each table's input, readings copied, and what the
    new readings' COPY did (inserted, updated)."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys((t.name for t in LOAD_TABLES), 0))
    copied: int = 0
    new: tuple[int, int] = (0, 0)
    digest: pl.DataFrame | None = None  # the digest of a one-part load


def _send_parts(conn: psycopg.Connection, store: OperationalStore, load: DayLoad, fresh: dict[str, bool],
                compare: bool, copy_connections: int, keeper: DigestKeeper) -> _Sent:
    """Each part in turn: read and conformed, digested, compared to its previous digest (when
    `compare`), then copied. A fresh day's table is filled on the load's connection with COPY
    FREEZE (the table is the transaction's own: its rows are written once, frozen, and with
    wal_level=minimal without WAL; one connection measured faster than two at 24 M readings).
    A merge's go to staging on parallel connections (each COPY commits apart, and the
    transaction's later statements see it), its new readings straight into the partition."""
    sent, day = _Sent(), load.day
    for index in range(load.parts):
        part = load.part(index)
        digest = row_digest(part.readings, READINGS.given_values) if load.digest_name else None
        if digest is not None:
            keeper.keep(index, digest)
        sent.digest = digest if load.parts == 1 else None
        changes = changes_since(load.previous.part(index), part.readings, digest) if compare else None
        for table in LOAD_TABLES:
            sent.rows[table.name] += part.frame(table).height
            if table is READINGS and changes is not None:
                stage_changes(store, day, changes, copy_connections)
                new = insert_new(conn, day, changes.inserts)
                sent.new = (sent.new[0] + new[0], sent.new[1] + new[1])
                sent.copied += changes.updates.height + changes.inserts.height
                continue
            if fresh[table.name]:
                copy_within(conn, staging(table, day), part.frame(table), table, freeze=True)
            else:
                copy_to_staging(store, partition_name(table.name, day), part.frame(table), copy_connections,
                                table.derive)
            sent.copied += part.frame(table).height if table is READINGS else 0
    return sent


def _write(conn: psycopg.Connection, load: DayLoad, table: LoadTable, sent: _Sent, fresh: bool,
           stored_before: int | None) -> Mirrored:
    """Inside the transaction: the day partition of `table` becomes its staged rows (with
    `stored_before`, the readings' changes stand for them)."""
    rows = sent.rows[table.name]
    if fresh:
        return attach(conn, table, load.day, rows)
    if table is READINGS and stored_before is not None:
        return apply_changes(conn, load.day, rows, sent.new, load.run_id, stored_before)
    return merge(conn, table, load.day, rows, load.run_id)
