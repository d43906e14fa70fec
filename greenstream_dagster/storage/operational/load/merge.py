"""A day that has a partition, merged: only the rows that are new or differ are written, and
the rows no longer in the input deleted (readings audited). Why so: the package's docstring."""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg import errors, sql

from greenstream_dagster.storage.operational.load.staging_tables import staging
from greenstream_dagster.storage.operational.load.tables import READINGS, LoadTable, Mirrored, duplicate_keys
from greenstream_dagster.storage.operational.partitions import partition_name

# ANALYZE a merged day partition when the load changed more than this share of it (a day at
# least doubled, say). Smaller changes are left to autovacuum, whose threshold (10 % + 50 rows)
# they pass too: it analyzes within a minute, outside the run, and once for several runs of a
# filling day, where each ANALYZE here took 0.5–0.7 s of the run on a full day.
ANALYZE_SHARE = 0.5


def merge(conn: psycopg.Connection, table: LoadTable, day: date, staged_rows: int, run_id: str | None) -> Mirrored:
    """Make the existing day partition equal to its staging table; count what changed."""
    target, staged = sql.Identifier(partition_name(table.name, day)), staging(table, day)
    changed = sql.Identifier(f"changed_{table.name}")
    on_key = matching_keys(table)
    before = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
    source = staged
    if before:
        # A CREATE TABLE AS of its own, because a data-modifying statement never runs in parallel.
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {changed} ON COMMIT DROP AS SELECT s.* FROM {staging} s "
                "LEFT JOIN {target} t ON {on_key} "
                "WHERE t.{first} IS NULL OR ({t}) IS DISTINCT FROM ({s})"
            ).format(changed=changed, staging=staged, target=target, on_key=on_key,
                     first=sql.Identifier(table.key[0]), t=_values(table, "t"), s=_values(table, "s"))
        )
        source = changed
    inserted, updated = upsert(conn, table, target, source)

    deleted = 0
    if before + inserted > staged_rows:  # the partition holds keys the input no longer has
        delete = sql.SQL("DELETE FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM {staging} s WHERE {on_key})").format(
            target=target, staging=staged, on_key=on_key
        )
        if table is READINGS:
            delete = audited(delete, run_id)
        deleted = conn.execute(delete).rowcount
    if before + inserted - deleted != staged_rows:  # identical duplicates pass the upsert unseen
        raise duplicate_keys(table)
    if inserted + updated + deleted > ANALYZE_SHARE * max(before, 1):
        conn.execute(sql.SQL("ANALYZE {}").format(target))
    return Mirrored(inserted, updated, staged_rows - inserted - updated, deleted)


def upsert(conn: psycopg.Connection, table: LoadTable, target: sql.Identifier, source: sql.Identifier) -> tuple[int, int]:
    """INSERT … ON CONFLICT DO UPDATE of the rows of `source` that are new or differ; (inserted, updated)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
    statement = sql.SQL(
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
        t=_values(table, "t"), excluded=_values(table, "excluded"),
    )
    try:
        return conn.execute(statement).fetchone()
    except errors.CardinalityViolation:
        raise duplicate_keys(table) from None


def audited(delete: sql.Composable, run_id: str | None) -> sql.Composable:
    """A removed reading is audited whole, in the same transaction (SPEC §5)."""
    return sql.SQL(
        "WITH gone AS ({delete} RETURNING t.*) "
        "INSERT INTO removed_readings (partition_date, meter_id, reading_ts, removed_by_run, reading) "
        "SELECT partition_date, meter_id, reading_ts, {run_id}, to_jsonb(gone) FROM gone"
    ).format(delete=delete, run_id=sql.Literal(run_id))


def matching_keys(table: LoadTable) -> sql.Composable:
    """`t.k = s.k AND …` over the table's key: a target row `t` and its source row `s`."""
    return sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in table.key)


def _values(table: LoadTable, alias: str) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, c) for c in table.values)
