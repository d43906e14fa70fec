"""Rows into PostgreSQL in bulk, as COPY BINARY of Arrow: into staging on parallel ADBC
connections, or on the load's own connection, inside its transaction (a first load's rows, frozen)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import psycopg
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from greenstream_dagster.storage.operational.load.staging_tables import STAGING_SCHEMA
from greenstream_dagster.storage.operational.load.tables import LoadTable
from greenstream_dagster.storage.operational.store import OperationalStore

# Below this many rows per connection, extra COPY connections cost more than they save.
_ROWS_PER_COPY_CONNECTION = 250_000
_COPY_BATCH_ROWS = 65_536
_DERIVE_ROWS = 1_048_576  # rows derived at a time on the load's connection (see copy_within)


def copy_to_staging(store: OperationalStore, staging_table: str, frame: pl.DataFrame, connections: int,
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
        with store.adbc(autocommit=True) as conn, conn.cursor() as cur:
            cur.adbc_ingest(staging_table, batches, mode="append", db_schema_name=STAGING_SCHEMA)

    if parts == 1:
        copy_slice(0)
        return
    with ThreadPoolExecutor(max_workers=parts) as pool:
        for done in [pool.submit(copy_slice, i) for i in range(parts)]:
            done.result()


def copy_within(conn: psycopg.Connection, target: sql.Identifier, frame: pl.DataFrame, table: LoadTable,
                *, freeze: bool = False) -> None:
    """COPY BINARY of the frame on the load's own connection, so inside its transaction (ADBC's
    COPY needs a connection of its own). The stored columns are derived a slice at a time and
    pgpq encodes the Arrow batches in Rust, while the queued writer sends what is ready: the
    server parses one slice as the next is derived. `freeze`: the rows are written frozen (COPY
    FREEZE: the target was created in this transaction), so no VACUUM rewrites them."""
    slices = (_stored_arrow(frame.slice(start, _DERIVE_ROWS), table.derive)
              for start in range(0, max(frame.height, 1), _DERIVE_ROWS))
    first = next(slices)
    columns = sql.SQL(", ").join(map(sql.Identifier, first.column_names))
    options = sql.SQL("FORMAT binary, FREEZE" if freeze else "FORMAT binary")
    encoder = ArrowToPostgresBinaryEncoder(first.schema)
    with conn.cursor() as cursor, cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
            target, columns, options), writer=QueuedLibpqWriter(cursor)) as copy:
        copy.write(encoder.write_header())
        for rows in itertools.chain([first], slices):
            # A slice exported with plain strings (see _to_arrow) is encoded as the first one was.
            rows = rows if rows.schema == first.schema else rows.cast(first.schema)
            for batch in rows.to_batches(_COPY_BATCH_ROWS):
                copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())


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
