"""Intermediate frames of the asset graph, as Parquet in S3 (SPEC §6).

Each partitioned asset writes its frames under `staging/<asset>/date=YYYY-MM-DD/<name>.parquet`,
so runs in separate processes (or on separate machines) share them. One object
per frame: S3 shows it whole or not at all. Readers ask only for the columns
they need; a day that was never materialized reads as None.

Within one process the frames a step wrote are also kept in memory, so the
next steps of the same run (one process: see the executor in definitions.py)
take them without downloading and decoding them again — the scored readings
alone are read by three assets. What is kept is always checked against the
object's current ETag first (one HEAD request), so a frame another process
has replaced since is never served; and it is bounded (`MEMORY_BYTES`), the
most recently written frames first.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import polars as pl

STAGING_PREFIX = "staging/"
# Enough for the largest frame of a 50,000-meter day (the scored readings, ~0.6 GB
# in memory) and the small frames beside it, not for two large ones: a step's frames push
# out the previous step's (the raw rows, once standardized), which only its own consumer
# needed. A frame pushed out is read from S3 again if asked for (it is small there).
MEMORY_BYTES = 800_000_000


def staging_key(asset: str, day: date, name: str) -> str:
    return f"{STAGING_PREFIX}{asset}/date={day.isoformat()}/{name}.parquet"


class _Written:
    """Frames this process wrote, by (bucket, key), with the ETag S3 gave them."""

    def __init__(self, budget: int):
        self.budget = budget
        self._frames: OrderedDict[tuple[str, str], tuple[str, pl.DataFrame, int]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, bucket: str, key: str, etag: str, frame: pl.DataFrame) -> None:
        size = frame.estimated_size()
        with self._lock:
            self._frames.pop((bucket, key), None)
            if size > self.budget:
                return
            self._frames[(bucket, key)] = (etag, frame, size)
            while sum(s for _, _, s in self._frames.values()) > self.budget:
                self._frames.popitem(last=False)

    def get(self, bucket: str, key: str) -> tuple[str, pl.DataFrame] | None:
        with self._lock:
            kept = self._frames.get((bucket, key))
        return None if kept is None else kept[:2]

    def forget(self, bucket: str, key: str) -> None:
        with self._lock:
            self._frames.pop((bucket, key), None)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()


_written = _Written(MEMORY_BYTES)


def encode(frame: pl.DataFrame) -> bytes:
    """zstd level 1: intermediate data is read back soon, by machines; a third of LZ4's size at
    little more cost."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=False)
    return buffer.getvalue()


def write_frame(client, bucket: str, asset: str, day: date, name: str, frame: pl.DataFrame) -> int:
    """Store one frame. Returns bytes written."""
    key = staging_key(asset, day, name)
    _written.forget(bucket, key)  # a failed write must not leave the older frame served from memory
    data = encode(frame)
    response = client.put_object(Bucket=bucket, Key=key, Body=data)
    _written.keep(bucket, key, response["ETag"], frame)
    return len(data)


def write_frames(client, bucket: str, asset: str, day: date, frames: dict[str, pl.DataFrame]) -> int:
    """Store several frames of one asset at once (encoding and upload overlap on threads:
    Parquet encoding and the network both run outside Python's lock). Returns bytes written."""
    with ThreadPoolExecutor(max_workers=len(frames) or 1) as pool:
        sizes = [pool.submit(write_frame, client, bucket, asset, day, name, frame) for name, frame in frames.items()]
        return sum(size.result() for size in sizes)


def delete_frame(client, bucket: str, asset: str, day: date, name: str) -> None:
    key = staging_key(asset, day, name)
    _written.forget(bucket, key)
    client.delete_object(Bucket=bucket, Key=key)


def read_frame(
    client, bucket: str, asset: str, day: date, name: str, columns: list[str] | None = None,
    where: pl.Expr | None = None,
) -> pl.DataFrame | None:
    """The frame, or None when it was never staged; `where` keeps only the matching rows, which
    are then all a large frame costs in memory (the filter runs while the Parquet is decoded)."""
    key = staging_key(asset, day, name)
    kept = _written.get(bucket, key)
    if kept is not None:
        etag, frame = kept
        try:
            current = client.head_object(Bucket=bucket, Key=key)["ETag"]
        except client.exceptions.ClientError:
            current = None
        if current == etag:
            frame = frame.filter(where) if where is not None else frame
            return frame.select(columns) if columns is not None else frame
        _written.forget(bucket, key)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    if where is None:
        return pl.read_parquet(io.BytesIO(body), columns=columns)
    scan = pl.scan_parquet(io.BytesIO(body)).filter(where)
    return (scan.select(columns) if columns is not None else scan).collect()
