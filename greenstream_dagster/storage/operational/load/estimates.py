"""The day's estimates of short gaps (SPEC §3b), mirrored whole inside the load's transaction."""

from __future__ import annotations

from datetime import date

import polars as pl
import psycopg
from psycopg import sql

from greenstream_dagster.storage.operational.load.bulk_copy import copy_within
from greenstream_dagster.storage.operational.load.merge import matching_keys, upsert
from greenstream_dagster.storage.operational.load.tables import ESTIMATES, Mirrored
from greenstream_dagster.storage.operational.partitions import partition_name


def mirror_estimates(conn: psycopg.Connection, day: date, estimates: pl.DataFrame) -> Mirrored:
    """Inside the load's transaction: the day's estimated_readings become `estimates` (a few
    thousand rows, copied whole into a temporary table). Withdrawn first (an estimate whose
    slot now has a reading), then upserted where new or different."""
    target = sql.Identifier(partition_name(ESTIMATES.name, day))
    scratch = sql.Identifier("estimates_of_load")
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
        scratch, sql.Identifier(ESTIMATES.name)))
    if estimates.height:
        copy_within(conn, scratch, estimates, ESTIMATES)
    withdrawn = conn.execute(sql.SQL("DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
        target, scratch, matching_keys(ESTIMATES))).rowcount
    inserted, updated = upsert(conn, ESTIMATES, target, scratch)
    return Mirrored(inserted, updated, estimates.height - inserted - updated, withdrawn)
