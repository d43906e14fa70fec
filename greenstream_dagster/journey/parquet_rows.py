"""The rows of one meter in a Parquet object in S3, read with ranged GETs.

A day of the lake or of the raw staging frame holds millions of rows; a journey
needs a handful. The Parquet footer is read first, row groups whose statistics
exclude the meter are skipped (the lake writes statistics; staging frames do
not), then only the key column of the remaining groups, and the full columns
only of the groups that hold a match.

Everything is read and decoded on the calling thread (`pre_buffer=False`,
`use_threads=False`). The object is a Python file, so Arrow's handles on it are
Python objects: read ahead on Arrow's I/O pool or decoded on its CPU pool, a
worker could drop the last of them just after the read returned, as the
interpreter was exiting, and need the GIL then — the process aborted
(`terminate called without an active exception`, exit 134) after printing. A
journey reads a handful of rows, so one thread and a GET per column chunk cost
little.
"""

from __future__ import annotations

import io

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


class _S3Object(io.RawIOBase):
    """A seekable, read-only file over one S3 object: every read is a ranged GET."""

    def __init__(self, client, bucket: str, key: str, size: int):
        self._client, self._bucket, self._key, self._size = client, bucket, key, size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        end = min(self._position + len(buffer), self._size)
        if end <= self._position:
            return 0
        body = self._client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end - 1}"
        )["Body"].read()
        buffer[: len(body)] = body
        self._position += len(body)
        return len(body)


def object_size(client, bucket: str, key: str) -> int | None:
    try:
        return client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def rows_where(client, bucket: str, key: str, column: str, value: str) -> pl.DataFrame | None:
    """Every row of the object whose `column` equals `value` (all columns), or None if the object is missing."""
    size = object_size(client, bucket, key)
    if size is None:
        return None
    # Unbuffered: Parquet reads whole column chunks, so each read is one GET of exactly what is needed.
    with _S3Object(client, bucket, key, size) as file:
        parquet = pq.ParquetFile(file, pre_buffer=False)
        leaf = _leaf_index(parquet, column)
        parts = []
        for group in range(parquet.num_row_groups):
            if not _may_hold(parquet.metadata.row_group(group).column(leaf).statistics, value):
                continue
            keys = parquet.read_row_group(group, columns=[column], use_threads=False).column(0)
            mask = pc.equal(keys, pa.scalar(value, keys.type))
            if not pc.any(mask).as_py():
                continue
            parts.append(parquet.read_row_group(group, use_threads=False).filter(mask))
        table = pa.concat_tables(parts) if parts else parquet.schema_arrow.empty_table()
    return pl.from_arrow(table)


def _leaf_index(parquet: pq.ParquetFile, column: str) -> int:
    """The Parquet leaf column of a flat top-level column (nested columns shift the arrow index)."""
    metadata = parquet.metadata.row_group(0) if parquet.num_row_groups else None
    if metadata is None:
        return 0
    for index in range(metadata.num_columns):
        if metadata.column(index).path_in_schema == column:
            return index
    raise KeyError(f"column {column!r} is not in the Parquet object")


def _may_hold(statistics, value: str) -> bool:
    if statistics is None or not statistics.has_min_max:
        return True
    return statistics.min <= value <= statistics.max
