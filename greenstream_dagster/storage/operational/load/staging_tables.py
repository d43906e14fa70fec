"""The load's tables aside, in the `load_staging` schema, owned by the day's load lock: a
first load's table, made in the load's transaction, and a merge's scratch, which the COPY
fills before it (each is replaced when a lost session left one)."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from psycopg import sql

from greenstream_dagster.storage.operational.load.tables import READINGS, LoadTable
from greenstream_dagster.storage.operational.partitions import partition_name

STAGING_SCHEMA = "load_staging"
# Scratch of a re-load beside the readings' staging table: "gone" (keys of readings the input
# no longer has), "new" (readings the digest called new whose key was there after all).
SCRATCH_KINDS = ("gone", "new")


def staging(table: LoadTable, day: date) -> sql.Identifier:
    return sql.Identifier(STAGING_SCHEMA, partition_name(table.name, day))


def scratch_name(day: date, kind: str) -> str:
    return partition_name(READINGS.name, day) + "_" + kind


def scratch(day: date, kind: str) -> sql.Identifier:
    return sql.Identifier(STAGING_SCHEMA, scratch_name(day, kind))


def create_staging(conn: psycopg.Connection, table: LoadTable, day: date, fresh: bool) -> None:
    """A table shaped like the day partition. For a fresh day it becomes the partition, so it
    is logged and carries the parent's CHECK constraints plus the day's bound (ATTACH then
    needs no validation scan); for a merge it is UNLOGGED scratch."""
    staged = staging(table, day)
    if fresh:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged))  # left by a crashed load
        conn.execute(
            sql.SQL(
                "CREATE TABLE {staging} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                "CONSTRAINT day_bound CHECK (partition_date >= {start} AND partition_date < {end}))"
            ).format(staging=staged, parent=sql.Identifier(table.name),
                     start=sql.Literal(day), end=sql.Literal(day + timedelta(days=1)))
        )
    else:
        create_unlogged_like(conn, staged, table)


def create_unlogged_like(conn: psycopg.Connection, scratch_table: sql.Identifier, table: LoadTable) -> None:
    """UNLOGGED scratch shaped like `table` (no WAL; parallel workers can scan it, unlike a TEMP
    table), replacing one a lost session left."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(scratch_table))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
        scratch_table, sql.Identifier(table.name)))


def drop_staged(conn: psycopg.Connection, day: date, tables: tuple[LoadTable, ...]) -> None:
    """Drop what the day's load left in the schema (an attached staging table has left it already)."""
    for table in tables:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging(table, day)))
    for kind in SCRATCH_KINDS:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(scratch(day, kind)))
