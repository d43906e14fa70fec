"""Look-ups of stored readings: one reading for the record-journey command (SPEC §9), a day's count."""

from __future__ import annotations

from datetime import date, datetime, timezone

from psycopg import sql
from psycopg.rows import dict_row

from greenstream_dagster.rules.schemas import METER_READING_COLUMNS
from greenstream_dagster.storage.operational.partitions import partition_name
from greenstream_dagster.storage.operational.store import OperationalStore

_COLUMNS = ", ".join([*METER_READING_COLUMNS, "loaded_at"])


def fetch_reading(database_url: str, meter_id: str, reading_ts: datetime) -> dict | None:
    """The stored reading of an interval key, or None. Pruned to the reading's day partition."""
    if reading_ts.tzinfo is None:
        raise ValueError("reading_ts must be timezone-aware (readings are stored in UTC)")
    day = reading_ts.astimezone(timezone.utc).date()
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM meter_readings "
            "WHERE meter_id = %s AND reading_ts = %s AND partition_date = %s",
            (meter_id, reading_ts, day),
        ).fetchone()


def fetch_estimate(database_url: str, meter_id: str, slot_ts: datetime) -> dict | None:
    """The estimate of a meter's slot (estimated_readings, SPEC §3b) with its partition table, or None."""
    day = slot_ts.astimezone(timezone.utc).date()
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT e.*, e.tableoid::regclass::text AS partition_table FROM estimated_readings e "
            "WHERE meter_id = %s AND slot_ts = %s AND partition_date = %s",
            (meter_id, slot_ts, day),
        ).fetchone()


def fetch_reading_by_record_id(
    database_url: str, record_id: str, partition_date: date | None = None
) -> dict | None:
    """The stored reading with this content id, or None.

    record_id is not indexed (a 64-character key per reading would cost more
    than the table's other indexes together); pass the day when known so only
    its partition is scanned, otherwise every hot day is.
    """
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM meter_readings WHERE record_id = %s "
            "AND (%s::date IS NULL OR partition_date = %s) ORDER BY partition_date DESC LIMIT 1",
            (record_id, partition_date, partition_date),
        ).fetchone()


def fetch_revisions(database_url: str, meter_id: str, reading_ts: datetime) -> list[dict]:
    """The superseded readings of an interval key (reading_revisions), by source object and line."""
    day = reading_ts.astimezone(timezone.utc).date()
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM reading_revisions WHERE meter_id = %s AND reading_ts = %s "
            "AND partition_date = %s ORDER BY source_key, source_line",
            (meter_id, reading_ts, day),
        ).fetchall()


def fetch_rejected(database_url: str, source_key: str, source_line: int, partition_date: date) -> dict | None:
    """The quarantine row of a physical line of a landing file, or None."""
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM rejected_readings WHERE partition_date = %s AND source_key = %s AND source_line = %s",
            (partition_date, source_key, source_line),
        ).fetchone()



_BY_SOURCE_TABLES = ("meter_readings", "reading_revisions")


def fetch_partition_table(database_url: str, meter_id: str, reading_ts: datetime) -> str | None:
    """The day partition (`meter_readings_pYYYYMMDD`) that physically holds a stored reading."""
    day = reading_ts.astimezone(timezone.utc).date()
    with OperationalStore(database_url).connect() as conn:
        row = conn.execute(
            "SELECT tableoid::regclass::text FROM meter_readings "
            "WHERE meter_id = %s AND reading_ts = %s AND partition_date = %s",
            (meter_id, reading_ts, day),
        ).fetchone()
    return row[0] if row else None


def fetch_revision_by_record_id(database_url: str, record_id: str) -> dict | None:
    """The reading_revisions row of a superseded record_id (latest day first), or None."""
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM reading_revisions WHERE record_id = %s ORDER BY partition_date DESC LIMIT 1",
            (record_id,),
        ).fetchone()


def fetch_row_by_source(
    database_url: str, table: str, source_key: str, source_line: int, partition_date: date
) -> dict | None:
    """The meter_readings or reading_revisions row that came from a physical line of a landing file."""
    if table not in _BY_SOURCE_TABLES:
        raise ValueError(f"table must be one of {_BY_SOURCE_TABLES}, got {table!r}")
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql.SQL("SELECT * FROM {} WHERE partition_date = %s AND source_key = %s AND source_line = %s LIMIT 1")
            .format(sql.Identifier(table)),
            (partition_date, source_key, source_line),
        ).fetchone()


def count_day_readings(database_url: str, partition_date: date) -> int:
    """Readings stored for a partition day (0 when the day has no partition)."""
    with OperationalStore(database_url).connect() as conn:
        table = conn.execute("SELECT to_regclass(%s)", (partition_name("meter_readings", partition_date),)).fetchone()[0]
        if table is None:
            return 0
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(str(table)))).fetchone()[0]
