"""A re-load that sends only what changed since the day's last load (its digest: changed_rows.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import polars as pl
import psycopg
from psycopg import errors, sql

from greenstream_dagster.storage.operational.changed_rows import (
    DIGEST_FORMAT,
    DIGEST_KEY,
    Changes,
    PreviousLoad,
    changes_since,
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


def changes_to_send(conn: psycopg.Connection, day: date, previous: PreviousLoad | None, readings: pl.DataFrame,
                    digest: pl.DataFrame | None) -> Changes | None:
    """What changed since `previous`, when PostgreSQL confirms that digest still describes the
    day's partition; None: everything is sent and compared in PostgreSQL. Compared while
    PostgreSQL counts the partition (both take a few tenths of a second on a full day)."""
    if previous is None or digest is None:
        return None
    with ThreadPoolExecutor(max_workers=1) as pool:
        compared = pool.submit(changes_since, previous.digest, readings, digest)
        if _previous_load_current(conn, day, previous):
            return compared.result()
    return None


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


def record_load(conn: psycopg.Connection, day: date, digest_name: str, readings: int) -> None:
    """The day's load record names the digest of what it now holds (in the load's transaction)."""
    conn.execute(
        "INSERT INTO day_loads (partition_date, digest, digest_format, readings) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (partition_date) DO UPDATE SET digest = excluded.digest, "
        "digest_format = excluded.digest_format, readings = excluded.readings, loaded_at = now()",
        (day, digest_name, DIGEST_FORMAT, readings),
    )


def create_gone(conn: psycopg.Connection, store: OperationalStore, day: date, keys: pl.DataFrame,
                connections: int) -> None:
    """Scratch table of the keys of readings the input no longer has."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(scratch(day, "gone")))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (meter_id text NOT NULL, reading_ts timestamptz NOT NULL)")
                 .format(scratch(day, "gone")))
    if keys.height:
        copy_to_staging(store, scratch_name(day, "gone"), keys.select(*DIGEST_KEY), connections)


def apply_changes(conn: psycopg.Connection, day: date, rows: int, changes: Changes, run_id: str | None,
                  stored_before: int) -> Mirrored:
    """Insert the new readings, upsert the changed ones and delete the gone ones (audited),
    nothing else. `stored_before`: the partition's readings, counted when the digest was
    confirmed (under the day's load lock): what the statements report adds up to what it holds
    now, without counting 4.8 million rows again."""
    target = sql.Identifier(partition_name(READINGS.name, day))
    inserted, updated = _insert_new(conn, day, changes.inserts) if changes.inserts.height else (0, 0)
    upserted = upsert(conn, READINGS, target, staging(READINGS, day))
    inserted, updated = inserted + upserted[0], updated + upserted[1]
    deleted = 0
    if changes.deleted_keys.height:
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


def _insert_new(conn: psycopg.Connection, day: date, readings: pl.DataFrame) -> tuple[int, int]:
    """COPY the readings the digest says are new straight into the day partition, (inserted,
    updated): neither a staging table in between nor ON CONFLICT's speculative insertion (an
    upsert of new rows is about 1.7 times as slow). Should a key be there after all, the
    savepoint is rolled back and these readings are staged and upserted instead."""
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
