"""A re-load that sends only what changed since the day's last load (its digest: changed_rows.py)."""

from __future__ import annotations

from datetime import date

import polars as pl
import psycopg
from psycopg import errors, sql

from greenstream_dagster.storage.operational.changed_rows import (
    DIGEST_KEY,
    Changes,
    PreviousLoad,
    digest_format,
)
from greenstream_dagster.storage.operational.load.bulk_copy import copy_to_staging, copy_within
from greenstream_dagster.storage.operational.load.merge import ANALYZE_SHARE, audited, upsert
from greenstream_dagster.storage.operational.load.staging_tables import (
    create_unlogged_like,
    scratch,
    scratch_name,
    staging,
)
from greenstream_dagster.storage.operational.load.tables import READINGS, Mirrored
from greenstream_dagster.storage.operational.partitions import partition_name
from greenstream_dagster.storage.operational.store import OperationalStore


def fetch_previous_load_name(store: OperationalStore, day: date) -> str | None:
    """The digest name the day's last load recorded (None: never loaded with one)."""
    with store.connect() as conn:
        row = conn.execute("SELECT digest FROM day_loads WHERE partition_date = %s", (day,)).fetchone()
    return row[0] if row else None


def trusted_previous(conn: psycopg.Connection, day: date, previous: PreviousLoad | None, parts: int) -> int | None:
    """The readings the day's partition holds when `previous` describes it: named by the last
    load, hashed the way this process hashes, kept in as many parts as this load has, and the
    partition still has the number of readings that load recorded. None: not trusted, so every
    reading is sent and compared in PostgreSQL. (Each part's digest is checked against the
    partition at the end, in apply_changes: the counts must add up.)"""
    if previous is None:
        return None
    row = conn.execute("SELECT digest, digest_format, readings FROM day_loads WHERE partition_date = %s",
                       (day,)).fetchone()
    if row is None or row[0] != previous.name or row[1] != digest_format(parts):
        return None
    if previous.digest is not None and previous.digest.height != row[2]:
        return None
    stored = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(partition_name(READINGS.name, day)))).fetchone()[0]
    return stored if stored == row[2] else None


def record_load(conn: psycopg.Connection, day: date, digest_name: str, readings: int, parts: int) -> None:
    """The day's load record names the digest of what it now holds (in the load's transaction)."""
    conn.execute(
        "INSERT INTO day_loads (partition_date, digest, digest_format, readings) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (partition_date) DO UPDATE SET digest = excluded.digest, "
        "digest_format = excluded.digest_format, readings = excluded.readings, loaded_at = now()",
        (day, digest_name, digest_format(parts), readings),
    )


def create_gone(conn: psycopg.Connection, day: date) -> None:
    """Scratch table of the keys of readings the input no longer has, filled part by part."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(scratch(day, "gone")))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (meter_id text NOT NULL, reading_ts timestamptz NOT NULL)")
                 .format(scratch(day, "gone")))


def stage_changes(store: OperationalStore, day: date, changes: Changes, connections: int) -> None:
    """One part's differing readings and gone keys into staging (its new readings go straight
    into the partition: insert_new)."""
    copy_to_staging(store, partition_name(READINGS.name, day), changes.updates, connections, READINGS.derive)
    if changes.deleted_keys.height:
        copy_to_staging(store, scratch_name(day, "gone"), changes.deleted_keys.select(*DIGEST_KEY), connections)


def insert_new(conn: psycopg.Connection, day: date, readings: pl.DataFrame) -> tuple[int, int]:
    """COPY the readings the digest says are new straight into the day partition, inside the
    load's transaction, (inserted, updated): neither a staging table in between nor ON
    CONFLICT's speculative insertion (an upsert of new rows is about 1.7 times as slow). Should a
    key be there after all, the savepoint is rolled back and these readings are staged and
    upserted instead."""
    if not readings.height:
        return 0, 0
    target = sql.Identifier(partition_name(READINGS.name, day))
    try:
        with conn.transaction():
            copy_within(conn, target, readings, READINGS)
        return readings.height, 0
    except errors.UniqueViolation:
        new = scratch(day, "new")
        create_unlogged_like(conn, new, READINGS)
        copy_within(conn, new, readings, READINGS)
        return upsert(conn, READINGS, target, new)


def apply_changes(conn: psycopg.Connection, day: date, rows: int, new: tuple[int, int], run_id: str | None,
                  stored_before: int) -> Mirrored:
    """After the new readings (`new`: what insert_new did, over all parts), upsert the changed
    ones and delete the gone ones (audited), nothing else. `stored_before`: the partition's
    readings, counted when the digest was confirmed (under the day's load lock): what the
    statements report adds up to what it holds now, without counting 4.8 million rows again."""
    target = sql.Identifier(partition_name(READINGS.name, day))
    upserted = upsert(conn, READINGS, target, staging(READINGS, day))
    inserted, updated = new[0] + upserted[0], new[1] + upserted[1]
    delete = sql.SQL(
        "DELETE FROM {target} t USING {gone} g WHERE t.meter_id = g.meter_id AND t.reading_ts = g.reading_ts"
    ).format(target=target, gone=scratch(day, "gone"))
    deleted = conn.execute(audited(delete, run_id)).rowcount
    stored = stored_before + inserted - deleted
    if stored != rows:  # the digest did not describe the partition after all: never commit that
        raise RuntimeError(f"meter_readings {day}: {stored} readings after loading the changes of {rows}; "
                           "the load is rolled back (the day's digest did not describe its partition)")
    if inserted + updated + deleted > ANALYZE_SHARE * max(rows, 1):
        conn.execute(sql.SQL("ANALYZE {}").format(target))
    return Mirrored(inserted, updated, rows - inserted - updated, deleted)
