"""Day partitions of the operational tables: naming, creation on demand, listing.

Every operational table is partitioned BY RANGE (partition_date), one partition
per UTC day named `<table>_pYYYYMMDD`, created when the day first gets rows:
by the load (load/first_load.py, which builds a new day's partition aside and
attaches it) or by a dead letter. Retention drops a day from every table at once.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import psycopg
from psycopg import sql

DAY_PARTITIONED_TABLES = ("meter_readings", "rejected_readings", "reading_revisions", "dead_letter_files",
                          "meter_presence", "silent_meters",  # these two: the fleet (0003_fleet.sql)
                          "estimated_readings")  # SPEC §3b (0005_estimated_readings.sql)
_BOUND = re.compile(r"FROM \('(\d{4}-\d{2}-\d{2})'\) TO \('(\d{4}-\d{2}-\d{2})'\)")
_LOCK = "greenstream.day_partitions"


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def ensure_day_partitions(
    conn: psycopg.Connection, day: date, tables: tuple[str, ...] = DAY_PARTITIONED_TABLES
) -> list[str]:
    """Create the missing partitions of `day` in these tables; return those created.

    Runs in its own short transaction, because creating a partition locks the
    parent table. The advisory lock makes two processes creating the same day
    wait for each other instead of failing.
    """
    created = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
        existing = {name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = ANY(%s::regclass[])", (list(DAY_PARTITIONED_TABLES),)
        )}
        for table in tables:
            name = partition_name(table, day)
            if name in existing:
                continue
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(name), sql.Identifier(table),
                    sql.Literal(day), sql.Literal(day + timedelta(days=1)),
                )
            )
            created.append(name)
    return created


def day_partition_exists(conn: psycopg.Connection, table: str, day: date) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass AND c.relname = %s)",
        (table, partition_name(table, day)),
    ).fetchone()[0]


def list_day_partitions(conn: psycopg.Connection, table: str) -> dict[date, str]:
    """The day partitions of `table`, read from their bounds (not their names)."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (table,),
    ).fetchall()
    days = {}
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            raise ValueError(f"partition {name} of {table} is not a one-day range: {bound}")
        start, end = (date.fromisoformat(g) for g in match.groups())
        if end - start != timedelta(days=1):
            raise ValueError(f"partition {name} of {table} spans {start}..{end}, not one day")
        days[start] = name
    return days
