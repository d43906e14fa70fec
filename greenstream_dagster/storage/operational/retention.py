"""90-day retention of the operational store (SPEC §5): drop whole day partitions.

A day older than `retention_days` (today − day > retention_days) loses its
partition in every operational table: a catalog operation, instant whatever
the row count, leaving no dead rows to vacuum — never a row DELETE. The drop
takes a brief exclusive lock on the parent tables; `lock_timeout` makes it
fail fast (and be retried) rather than queue behind a long load while blocking
every reader behind it.
"""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from psycopg import sql

from greenstream_dagster.storage.operational.partitions import DAY_PARTITIONED_TABLES, list_day_partitions
from greenstream_dagster.storage.operational.store import OperationalStore

LOCK_TIMEOUT = "5s"
AUTOVACUUM_YIELD = "50ms"


def expired_before(today: date, retention_days: int) -> date:
    """The first day that is kept: days before it are older than the retention limit."""
    if retention_days < 1:
        raise ValueError(f"GREENSTREAM_RETENTION_DAYS must be at least 1, got {retention_days}")
    return today - timedelta(days=retention_days)


def apply_retention(database_url: str, today: date, retention_days: int = 90) -> list[str]:
    """Drop the day partitions older than `retention_days`; return their names (oldest first)."""
    keep_from = expired_before(today, retention_days)
    dropped: list[str] = []
    with OperationalStore(database_url).connect() as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        _cancel_autovacuum_sooner(conn)
        for table in DAY_PARTITIONED_TABLES:
            for day, name in sorted(list_day_partitions(conn, table).items()):
                if day < keep_from:
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    dropped.append(name)
    return sorted(dropped, key=lambda name: (name.rsplit("_p", 1)[1], name))


def _cancel_autovacuum_sooner(conn: psycopg.Connection) -> None:
    """An autovacuum of a partition yields to the DROP only after deadlock_timeout (1 s by
    default); lower it for this transaction when the role may (superuser or GRANT SET)."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL deadlock_timeout = {}").format(sql.Literal(AUTOVACUUM_YIELD)))
    except psycopg.errors.InsufficientPrivilege:
        pass
