"""Load one partition day into the operational store, idempotently (SPEC §5).

The day's readings, quarantine rows and revisions are bulk-copied (ADBC: Arrow
to COPY BINARY, on parallel connections) into tables of the `load_staging`
schema; then, in ONE transaction, each table's day partition is made to
mirror its input:

* A day without a partition yet (first load) gets one built aside: the COPY
  went straight into a table shaped like the partition, its key index is
  built in one sort, and it is attached with ATTACH PARTITION (a lock that does
  not block readers or other days' loads), then frozen and analyzed. Every
  row is inserted, written once.
* A day that has a partition is merged: the rows that are new or differ are
  found by a parallel hash join on the key, then written by
  `INSERT … ON CONFLICT (key) DO UPDATE … WHERE (…) IS DISTINCT FROM (…)`
  (every column but loaded_at). Identical rows are never touched, so a re-load
  of identical input changes zero rows and keeps their loaded_at, and a
  re-score updates exactly the rows that differ. Filtering first matters: ON
  CONFLICT DO UPDATE locks (writes) every conflicting row even when its WHERE
  is false. Rows of the day no longer in the input are then deleted (the
  anti-join runs only when the counts show there is something to delete).
* A day loaded before with a digest of what it holds (changed_rows.py) is
  sent only what changed: new readings are COPYed straight into the
  partition, inside the transaction (a filling day gains half a million a
  run; staging them first and INSERTing them cost half as much again),
  differing ones go by the upsert above, gone ones are deleted by key.

The day's estimates of short gaps (SPEC §3b) go into estimated_readings in the
same transaction: a few thousand rows, copied whole into a temporary table and
mirrored (withdrawn when gone, upserted where they differ).

Merge staging tables are UNLOGGED (no WAL; unlike TEMP tables, parallel
workers can scan them). A session advisory lock per day keeps two loads of
the same day apart (runs of a partition should never overlap anyway, SPEC §6).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, timedelta

import polars as pl
import psycopg
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg import errors, sql
from psycopg.copy import QueuedLibpqWriter

from greenstream_dagster.rules.reading_order import sorted_by
from greenstream_dagster.rules.record_id import with_record_id
from greenstream_dagster.rules.schemas import (
    ESTIMATE_COLUMNS,
    METER_READING_COLUMNS,
    REJECTED_COLUMNS,
    REVISION_COLUMNS,
    SCORED_COLUMNS,
)
from greenstream_dagster.storage.operational.adbc_connections import adbc_connection
from greenstream_dagster.storage.operational.changed_rows import (
    DIGEST_FORMAT,
    DIGEST_KEY,
    PreviousLoad,
    changes_since,
    row_digest,
)
from greenstream_dagster.storage.operational.partitions import (
    day_partition_exists,
    ensure_day_partitions,
    partition_name,
)

STAGING_SCHEMA = "load_staging"
# Per load transaction: the diff's parallel hash join and the key index build in memory.
_TRANSACTION_SETTINGS = {"work_mem": "256MB", "hash_mem_multiplier": "2", "maintenance_work_mem": "512MB"}
# Below this many rows per connection, extra COPY connections cost more than they save.
_ROWS_PER_COPY_CONNECTION = 250_000
_COPY_BATCH_ROWS = 65_536
# ANALYZE a merged day partition when the load changed more than this share of it (a day at
# least doubled, say). Smaller changes are left to autovacuum, whose threshold (10 % + 50 rows)
# they pass too: it analyzes within a minute, outside the run, and once for several runs of a
# filling day, where each ANALYZE here took 0.5–0.7 s of the run on a full day.
_ANALYZE_SHARE = 0.5
_LOAD_LOCK = 0x6C6F6164  # advisory lock namespace of "load of a partition day"


@dataclass(frozen=True)
class _Table:
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


READINGS = _Table("meter_readings", SCORED_COLUMNS, ("meter_id", "reading_ts", "partition_date"), METER_READING_COLUMNS,
                  derive=_with_content_id)
REJECTED = _Table("rejected_readings", REJECTED_COLUMNS, ("partition_date", "source_key", "source_line"),
                  REJECTED_COLUMNS)
REVISIONS = _Table(
    "reading_revisions", REVISION_COLUMNS, ("partition_date", "meter_id", "reading_ts", "record_id"), REVISION_COLUMNS
)
# SPEC §3b: a few thousand rows a day, mirrored whole in the load's transaction.
ESTIMATES = _Table("estimated_readings", ESTIMATE_COLUMNS, ("meter_id", "slot_ts", "partition_date"), ESTIMATE_COLUMNS,
                   stamp="estimated_at")


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


@dataclass(frozen=True)
class _Mirror:
    """What a load under the day's lock did: each table's result, the readings copied, when
    staging ended, the digest name the day's load record names now, and the estimates' result."""

    tables: list[_Mirrored]
    copied: int
    staged: float
    digest_name: str | None
    estimates: _Mirrored | None = None  # SPEC §3b, when the load was given estimates


@dataclass(frozen=True)
class _Mirrored:
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


def load_partition(
    database_url: str,
    partition_date: date,
    readings: pl.DataFrame,
    rejected: pl.DataFrame,
    revisions: pl.DataFrame,
    *,
    copy_connections: int | None = None,
    run_id: str | None = None,
    previous: PreviousLoad | None = None,
    digest_name: str | None = None,
    keep_digest: Callable[[pl.DataFrame], None] | None = None,
    estimates: pl.DataFrame | None = None,
) -> LoadResult:
    """Make the day's partitions of meter_readings, rejected_readings and reading_revisions
    mirror these frames (contracts: SCORED_COLUMNS, REJECTED_COLUMNS, REVISION_COLUMNS; each
    reading's record_id is derived here).

    Readings the input no longer has are deleted and kept in removed_readings with
    `run_id` (SPEC §5: never removed silently). With `previous` (the digest the
    day's last load left, see changed_rows.py) only the readings that changed are
    sent, when PostgreSQL confirms that digest still describes the day. With
    `digest_name` the load records that name for the digest of this input (returned
    in the result, for the caller to store). `keep_digest` stores it while the load runs, in a
    thread of its own: the load commits only once it has returned, so `day_loads` never names
    a digest that was not stored.

    With `estimates` (ESTIMATE_COLUMNS, SPEC §3b) the day's estimated_readings are made to
    mirror them in the same transaction: estimates gone from the input are withdrawn
    (deleted and counted), the others upserted only where they differ, so an identical
    re-load changes no row and keeps estimated_at. None leaves estimated_readings alone."""
    started = time.perf_counter()
    frames = [
        (table, _conform(table, frame, partition_date))
        for table, frame in ((READINGS, readings), (REJECTED, rejected), (REVISIONS, revisions))
    ]
    digest = row_digest(frames[0][1], READINGS.given_values) if digest_name else None
    estimates = _conform(ESTIMATES, estimates, partition_date) if estimates is not None else None
    copy_connections = copy_connections or min(os.cpu_count() or 1, 4)
    keeper = ThreadPoolExecutor(max_workers=1)  # the digest's upload beside the load
    kept = keeper.submit(keep_digest, digest) if keep_digest is not None and digest is not None else None
    try:
        with psycopg.connect(database_url, autocommit=True) as conn, _day_locked(conn, partition_date, frames):
            mirror = _mirror(conn, database_url, partition_date, frames, copy_connections,
                             run_id, previous, digest, digest_name, kept, estimates)
            merged = time.perf_counter()
    finally:
        keeper.shutdown(wait=True)

    readings_result, rejected_result, revisions_result = mirror.tables
    return LoadResult(
        partition_date=partition_date,
        inserted=readings_result.inserted,
        updated=readings_result.updated,
        unchanged=readings_result.unchanged,
        deleted=readings_result.deleted,
        rejected_rows=rejected_result.rows,
        rejected_changed=rejected_result.changed,
        revision_rows=revisions_result.rows,
        revisions_changed=revisions_result.changed,
        stage_seconds=round(mirror.staged - started, 3),
        merge_seconds=round(merged - mirror.staged, 3),
        seconds=round(merged - started, 3),
        readings_copied=mirror.copied,
        digest=digest,
        digest_name=mirror.digest_name,
        estimate_rows=mirror.estimates.rows if mirror.estimates else 0,
        estimates_inserted=mirror.estimates.inserted if mirror.estimates else 0,
        estimates_updated=mirror.estimates.updated if mirror.estimates else 0,
        estimates_withdrawn=mirror.estimates.deleted if mirror.estimates else 0,
    )


@contextmanager
def _day_locked(conn: psycopg.Connection, day: date, frames: list):
    """The day's load lock held on `conn`; on the way out the load's scratch tables are dropped
    and the lock released (a lost session has released its lock already; its scratch stays for
    the next load, which drops it first)."""
    lock = (_LOAD_LOCK, day.toordinal())
    conn.execute("SELECT pg_advisory_lock(%s, %s)", lock)
    try:
        yield
    finally:
        if not conn.broken:
            for table, _ in frames:  # an attached staging table has left the schema already
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_staging(table, day)))
            for kind in ("gone", "new"):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_scratch(day, kind)))
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)


def _mirror(conn: psycopg.Connection, database_url: str, day: date, frames: list, copy_connections: int,
            run_id: str | None, previous: PreviousLoad | None, digest: pl.DataFrame | None,
            digest_name: str | None, kept, estimates: pl.DataFrame | None = None) -> _Mirror:
    """Under the day's lock: stage the frames, then make the partitions mirror them in one
    transaction, committed only once the digest upload (`kept`) has returned."""
    fresh = {t.name: not day_partition_exists(conn, t.name, day) for t, _ in frames}
    changes, copied = None, 0
    if previous is not None and digest is not None and not fresh[READINGS.name]:
        # Compared while PostgreSQL counts the partition (both take a few tenths of a
        # second on a full day); the comparison is dropped if the digest is not current.
        with ThreadPoolExecutor(max_workers=1) as pool:
            compared = pool.submit(changes_since, previous.digest, frames[0][1], digest)
            if _previous_load_current(conn, day, previous):
                changes = compared.result()
    for table, frame in frames:
        _create_staging(conn, table, day, fresh[table.name])
        if table is READINGS and changes is not None:
            frame = changes.updates
            _create_gone(conn, day, changes.deleted_keys, copy_connections, database_url)
            copied += changes.inserts.height  # copied in the transaction, straight into the partition
        _copy(database_url, partition_name(table.name, day), frame, copy_connections, table.derive)
        copied += frame.height if table is READINGS else 0
    if estimates is not None:
        ensure_day_partitions(conn, day, (ESTIMATES.name,))
    staged = time.perf_counter()
    estimated = None
    with conn.transaction():
        for name, value in _TRANSACTION_SETTINGS.items():
            conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        results = []
        for table, frame in frames:
            if fresh[table.name]:
                results.append(_attach(conn, table, day, frame.height))
            elif table is READINGS and changes is not None:
                results.append(_apply_changes(conn, day, frame.height, changes, run_id,
                                              stored_before=previous.digest.height))
            else:
                results.append(_merge(conn, table, day, frame.height, run_id))
        if estimates is not None:
            estimated = _mirror_estimates(conn, day, estimates)
        if changes is not None and not results[0].changed:
            digest_name = previous.name  # the same readings: the day's load record stays as it is (SPEC §5)
        elif digest_name is not None:
            _record_load(conn, day, digest_name, frames[0][1].height)
        if kept is not None:
            kept.result()  # stored before the load that names it commits
    _freeze(conn, [t for t, _ in frames if fresh[t.name]], day)
    return _Mirror(results, copied, staged, digest_name, estimated)


def _mirror_estimates(conn: psycopg.Connection, day: date, estimates: pl.DataFrame) -> _Mirrored:
    """Inside the load's transaction: the day's estimated_readings become `estimates`. Withdrawn
    first (an estimate whose slot now has a reading), then upserted where new or different."""
    target = sql.Identifier(partition_name(ESTIMATES.name, day))
    scratch = sql.Identifier("estimates_of_load")
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
        scratch, sql.Identifier(ESTIMATES.name)))
    if estimates.height:
        _copy_within(conn, scratch, estimates, ESTIMATES)
    on_key = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in ESTIMATES.key)
    withdrawn = conn.execute(sql.SQL("DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
        target, scratch, on_key)).rowcount
    inserted, updated = _upsert(conn, ESTIMATES, target, scratch)
    return _Mirrored(inserted, updated, estimates.height - inserted - updated, withdrawn)


def _previous_load_current(conn: psycopg.Connection, day: date, previous: PreviousLoad) -> bool:
    """Whether `previous` is what the day's partition holds: named by the last load, hashed the
    way this process hashes, and the partition still has exactly its readings."""
    row = conn.execute("SELECT digest, digest_format, readings FROM day_loads WHERE partition_date = %s",
                       (day,)).fetchone()
    if row is None or row[0] != previous.name or row[1] != DIGEST_FORMAT or row[2] != previous.digest.height:
        return False
    stored = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(partition_name(READINGS.name, day)))).fetchone()[0]
    return stored == previous.digest.height


def _record_load(conn: psycopg.Connection, day: date, digest_name: str, readings: int) -> None:
    conn.execute(
        "INSERT INTO day_loads (partition_date, digest, digest_format, readings) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (partition_date) DO UPDATE SET digest = excluded.digest, "
        "digest_format = excluded.digest_format, readings = excluded.readings, loaded_at = now()",
        (day, digest_name, DIGEST_FORMAT, readings),
    )


def fetch_previous_load_name(database_url: str, day: date) -> str | None:
    """The digest name the day's last load recorded (None: never loaded with one)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT digest FROM day_loads WHERE partition_date = %s", (day,)).fetchone()
    return row[0] if row else None


def _scratch_name(day: date, kind: str) -> str:
    """Scratch tables of a re-load beside the staging table: "gone" (keys), "new" (readings the
    digest called new whose key was there after all, to be upserted)."""
    return partition_name(READINGS.name, day) + "_" + kind


def _scratch(day: date, kind: str) -> sql.Identifier:
    return sql.Identifier(STAGING_SCHEMA, _scratch_name(day, kind))


def _create_gone(conn: psycopg.Connection, day: date, keys: pl.DataFrame, connections: int, database_url: str) -> None:
    """Scratch table of the keys of readings the input no longer has."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_scratch(day, "gone")))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (meter_id text NOT NULL, reading_ts timestamptz NOT NULL)")
                 .format(_scratch(day, "gone")))
    if keys.height:
        _copy(database_url, _scratch_name(day, "gone"), keys.select(*DIGEST_KEY), connections)


def _apply_changes(conn: psycopg.Connection, day: date, rows: int, changes, run_id: str | None,
                   stored_before: int) -> _Mirrored:
    """Insert the new readings, upsert the changed ones and delete the gone ones (audited),
    nothing else. `stored_before`: the partition's readings, counted when the digest was
    confirmed (under the day's load lock): what the statements report adds up to what it holds
    now, without counting 4.8 million rows again."""
    target = sql.Identifier(partition_name(READINGS.name, day))
    inserted, updated = _insert_new(conn, day, changes.inserts) if changes.inserts.height else (0, 0)
    upserted = _upsert(conn, READINGS, target, _staging(READINGS, day))
    inserted, updated = inserted + upserted[0], updated + upserted[1]
    deleted = 0
    if changes.deleted_keys.height:
        delete = sql.SQL(
            "DELETE FROM {target} t USING {gone} g WHERE t.meter_id = g.meter_id AND t.reading_ts = g.reading_ts"
        ).format(target=target, gone=_scratch(day, "gone"))
        deleted = conn.execute(_audited(delete, run_id)).rowcount
    stored = stored_before + inserted - deleted
    if stored != rows:  # the digest did not describe the partition after all: never commit that
        raise RuntimeError(f"meter_readings {day}: {stored} readings after loading the changes of {rows}; "
                           "the load is rolled back (the day's digest did not describe its partition)")
    if inserted + updated + deleted > _ANALYZE_SHARE * max(rows, 1):
        conn.execute(sql.SQL("ANALYZE {}").format(target))
    return _Mirrored(inserted, updated, rows - inserted - updated, deleted)


def _insert_new(conn: psycopg.Connection, day: date, readings: pl.DataFrame) -> tuple[int, int]:
    """COPY the readings the digest says are new straight into the day partition, (inserted,
    updated): neither a staging table in between nor ON CONFLICT's speculative insertion (an
    upsert of new rows is about 1.7 times as slow). Should a key be there after all, the
    savepoint is rolled back and these readings are staged and upserted instead."""
    target = sql.Identifier(partition_name(READINGS.name, day))
    try:
        with conn.transaction():
            _copy_within(conn, target, readings, READINGS)
        return readings.height, 0
    except errors.UniqueViolation:
        scratch = _scratch(day, "new")
        _create_unlogged_like(conn, scratch, READINGS)
        _copy_within(conn, scratch, readings, READINGS)
        return _upsert(conn, READINGS, target, scratch)


def _copy_within(conn: psycopg.Connection, target: sql.Identifier, frame: pl.DataFrame, table: _Table) -> None:
    """COPY BINARY of the frame on the load's own connection, so inside its transaction (ADBC's
    COPY needs a connection of its own). pgpq encodes the Arrow batches in Rust; the queued
    writer sends one batch while the next is encoded."""
    rows = _stored_arrow(frame, table.derive)
    columns = sql.SQL(", ").join(map(sql.Identifier, rows.column_names))
    encoder = ArrowToPostgresBinaryEncoder(rows.schema)
    with conn.cursor() as cursor, cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            target, columns), writer=QueuedLibpqWriter(cursor)) as copy:
        copy.write(encoder.write_header())
        for batch in rows.to_batches(_COPY_BATCH_ROWS):
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())


def _audited(delete: sql.Composable, run_id: str | None) -> sql.Composable:
    """A removed reading is audited whole, in the same transaction (SPEC §5)."""
    return sql.SQL(
        "WITH gone AS ({delete} RETURNING t.*) "
        "INSERT INTO removed_readings (partition_date, meter_id, reading_ts, removed_by_run, reading) "
        "SELECT partition_date, meter_id, reading_ts, {run_id}, to_jsonb(gone) FROM gone"
    ).format(delete=delete, run_id=sql.Literal(run_id))


def _conform(table: _Table, frame: pl.DataFrame, day: date) -> pl.DataFrame:
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


def _staging(table: _Table, day: date) -> sql.Identifier:
    return sql.Identifier(STAGING_SCHEMA, partition_name(table.name, day))


def _create_staging(conn: psycopg.Connection, table: _Table, day: date, fresh: bool) -> None:
    """A table shaped like the day partition. For a fresh day it becomes the partition, so it
    is logged and carries the parent's CHECK constraints plus the day's bound (ATTACH then
    needs no validation scan); for a merge it is UNLOGGED scratch."""
    staging = _staging(table, day)
    if fresh:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))  # left by a crashed load
        conn.execute(
            sql.SQL(
                "CREATE TABLE {staging} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                "CONSTRAINT day_bound CHECK (partition_date >= {start} AND partition_date < {end}))"
            ).format(staging=staging, parent=sql.Identifier(table.name),
                     start=sql.Literal(day), end=sql.Literal(day + timedelta(days=1)))
        )
    else:
        _create_unlogged_like(conn, staging, table)


def _create_unlogged_like(conn: psycopg.Connection, scratch: sql.Identifier, table: _Table) -> None:
    """UNLOGGED scratch shaped like `table` (no WAL; parallel workers can scan it, unlike a TEMP
    table), replacing one a lost session left."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(scratch))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
        scratch, sql.Identifier(table.name)))


def _copy(database_url: str, staging_table: str, frame: pl.DataFrame, connections: int,
          derive: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> None:
    """COPY the frame into the staging table, in contiguous slices on parallel connections
    (the client-side Arrow encoding and the server-side parsing each use one core). Each
    slice derives its own stored columns, so that work overlaps the other slices' COPY."""
    parts = max(1, min(connections, frame.height // _ROWS_PER_COPY_CONNECTION))
    size = -(-frame.height // parts) if frame.height else 0

    def copy_slice(i: int) -> None:
        # The newest Arrow level exports Polars strings as string_view without a copy;
        # small batches let the driver stream (encode while the server parses) instead
        # of encoding the whole slice into one buffer first.
        part = frame.slice(i * size, size)
        rows = _stored_arrow(part, derive)
        batches = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(_COPY_BATCH_ROWS))
        with adbc_connection(database_url, autocommit=True) as conn, conn.cursor() as cur:
            cur.adbc_ingest(staging_table, batches, mode="append", db_schema_name=STAGING_SCHEMA)

    if parts == 1:
        copy_slice(0)
        return
    with ThreadPoolExecutor(max_workers=parts) as pool:
        for done in [pool.submit(copy_slice, i) for i in range(parts)]:
            done.result()


def _stored_arrow(frame: pl.DataFrame, derive: Callable[[pl.DataFrame], pl.DataFrame] | None) -> pa.Table:
    """The rows as they are copied: with the columns the load derives, as Arrow."""
    return _to_arrow(derive(frame) if derive is not None else frame)


def _to_arrow(frame: pl.DataFrame) -> pa.Table:
    """Arrow without copying the strings (string views) where Polars can export them so.

    A few rows gathered out of a list-of-strings column can keep offsets into an empty view
    buffer, which Arrow's validation rejects (Polars 1.44): those are exported as plain
    strings instead (a copy, of a small frame: it only happens to gathered rows).
    """
    try:
        return frame.to_arrow(compat_level=pl.CompatLevel.newest())
    except pa.ArrowInvalid:
        return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def _duplicate_keys(table: _Table) -> ValueError:
    return ValueError(f"{table.name}: the frame holds two rows with the same key {table.key}")


def _attach(conn: psycopg.Connection, table: _Table, day: date, staged_rows: int) -> _Mirrored:
    """Make the staged table the day's partition: key index built in one sort, then attached."""
    staging, name = _staging(table, day), partition_name(table.name, day)
    key = sql.SQL(", ").join(map(sql.Identifier, table.key))
    try:
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(staging, key))
    except errors.UniqueViolation:
        raise _duplicate_keys(table) from None
    conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA public").format(staging))
    conn.execute(
        sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {part} FOR VALUES FROM ({start}) TO ({end})").format(
            parent=sql.Identifier(table.name), part=sql.Identifier(name),
            start=sql.Literal(day), end=sql.Literal(day + timedelta(days=1)),
        )
    )
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT day_bound").format(sql.Identifier(name)))
    return _Mirrored(inserted=staged_rows, updated=0, unchanged=0, deleted=0)


def _freeze(conn: psycopg.Connection, attached: list[_Table], day: date) -> None:
    """VACUUM (FREEZE, ANALYZE) the newly attached day partitions, after the commit: in one
    pass now, rather than the first reader writing hint bits on every page and autovacuum
    rescanning the day later (and again against wraparound). The day is mostly read from now on."""
    for table in attached:
        conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(sql.Identifier(partition_name(table.name, day))))


def _merge(conn: psycopg.Connection, table: _Table, day: date, staged_rows: int, run_id: str | None) -> _Mirrored:
    """Make the existing day partition equal to its staging table; count what changed."""
    target, staging = sql.Identifier(partition_name(table.name, day)), _staging(table, day)
    changed = sql.Identifier(f"changed_{table.name}")
    on_key = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in table.key)

    def values(alias: str) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in table.values)

    before = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
    source = staging
    if before:
        # A CREATE TABLE AS of its own, because a data-modifying statement never runs in parallel.
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {changed} ON COMMIT DROP AS SELECT s.* FROM {staging} s "
                "LEFT JOIN {target} t ON {on_key} "
                "WHERE t.{first} IS NULL OR ({t}) IS DISTINCT FROM ({s})"
            ).format(changed=changed, staging=staging, target=target, on_key=on_key,
                     first=sql.Identifier(table.key[0]), t=values("t"), s=values("s"))
        )
        source = changed
    inserted, updated = _upsert(conn, table, target, source)

    deleted = 0
    if before + inserted > staged_rows:  # the partition holds keys the input no longer has
        delete = sql.SQL("DELETE FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM {staging} s WHERE {on_key})").format(
            target=target, staging=staging, on_key=on_key
        )
        if table is READINGS:
            delete = _audited(delete, run_id)
        deleted = conn.execute(delete).rowcount
    if before + inserted - deleted != staged_rows:  # identical duplicates pass the upsert unseen
        raise _duplicate_keys(table)
    if inserted + updated + deleted > _ANALYZE_SHARE * max(before, 1):
        conn.execute(sql.SQL("ANALYZE {}").format(target))
    return _Mirrored(inserted, updated, staged_rows - inserted - updated, deleted)


def _upsert(conn: psycopg.Connection, table: _Table, target: sql.Identifier, source: sql.Identifier) -> tuple[int, int]:
    """INSERT … ON CONFLICT DO UPDATE of the rows of `source` that are new or differ; (inserted, updated)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))

    def values(alias: str) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in table.values)

    upsert = sql.SQL(
        "WITH upserted AS ("
        " INSERT INTO {target} AS t ({columns}) SELECT {columns} FROM {source}"
        " ON CONFLICT ({key}) DO UPDATE SET {assignments}, {stamp} = now()"
        " WHERE ({t}) IS DISTINCT FROM ({excluded})"
        " RETURNING (t.xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted"
    ).format(
        target=target, columns=columns, source=source, key=sql.SQL(", ").join(map(sql.Identifier, table.key)),
        stamp=sql.Identifier(table.stamp),
        assignments=sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in table.values),
        t=values("t"), excluded=values("excluded"),
    )
    try:
        return conn.execute(upsert).fetchone()
    except errors.CardinalityViolation:
        raise _duplicate_keys(table) from None
