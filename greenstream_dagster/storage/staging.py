"""Intermediate frames of the asset graph, as Parquet in S3 (SPEC §6).

Each partitioned asset writes its frames under `staging/<asset>/date=YYYY-MM-DD/<name>.parquet`,
so runs in separate processes (or on separate machines) share them. One object
per frame: S3 shows it whole or not at all. Readers ask only for the columns
they need; a day that was never materialized reads as None.

Within one process the frames a step wrote (or read whole) are also kept in memory, so the
next steps of the same run (one process: see the executor in definitions.py)
take them without downloading and decoding them again — the scored readings
alone are read by three assets. What is kept is always checked against the
object's current ETag first (one HEAD request), so a frame another process
has replaced since is never served; and it is bounded (`MEMORY_BYTES`), the
most recently written frames first.

A large frame that a re-run changes only in part (the rows of the meters or of
the landing objects a change touched) is written as a **layer** on top of the
frame staged before: `<name>.layer.parquet` holds the rows that replaced part of
the base `<name>.parquet`, and in its Parquet metadata which rows of the base
they replaced (the values of one column), and the base's ETag. A reader takes
the base without the replaced rows, then the layer's (merged in order when the
frame is sorted). The layer grows with each re-run, taking the previous layer's
rows that were not replaced again, until it would hold more than `LAYER_SHARE`
of the frame: then the frame is written whole and the layer removed. A layer
whose base is not the one it was written on (a whole write cut short between
the two objects) makes the frame read as never staged, so its next writer
builds it whole again.

A day split into meter shards (SPEC §10) stages each shard's frames apart, under
`…/date=D/shards=N/shard=K/<name>.parquet`, and then, once every shard is staged,
its **layout** `…/date=D/shards.parquet` (the shard count). A day read as a whole
follows the layout: the shards' frames put together in meter order. A day without
a layout is one shard, staged at the paths above (a fleet of one shard, and every
day staged before shards existed).
"""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import polars as pl

from greenstream_dagster.rules.meter_shards import Shard
from greenstream_dagster.rules.reading_order import in_order, merge_disjoint

STAGING_PREFIX = "staging/"
# Enough for the largest frame of a 50,000-meter day (the scored readings, ~0.6 GB
# in memory) and the small frames beside it, not for two large ones: a step's frames push
# out the previous step's (the raw rows, once standardized), which only its own consumer
# needed. A frame pushed out is read from S3 again if asked for (it is small there).
MEMORY_BYTES = 800_000_000


# A layer is written while it holds at most this share of the frame's rows.
LAYER_SHARE = 0.25
_LAYER_METADATA = "greenstream.layer"


def staging_key(asset: str, day: date, name: str) -> str:
    return f"{STAGING_PREFIX}{asset}/date={day.isoformat()}/{name}.parquet"


def layer_key(asset: str, day: date, name: str) -> str:
    return f"{STAGING_PREFIX}{asset}/date={day.isoformat()}/{name}.layer.parquet"


@dataclass(frozen=True)
class Change:
    """How a frame's new version differs from the version staged before it: the rows whose
    `column` holds one of `replaced` gave way to `rows` (a replaced value may have no rows
    before or after: a new meter, a removed object). `sorted_by`: the frame is in order of
    that column, each value's rows together (a merge keeps it so)."""

    column: str
    replaced: pl.Series  # text values
    rows: pl.DataFrame  # each with one of the `replaced` values
    sorted_by: str | None = None


@dataclass(frozen=True)
class _Layer:
    base_etag: str
    column: str
    replaced: pl.Series
    sorted_by: str | None
    rows: pl.DataFrame

    def metadata(self) -> dict[str, str]:
        return {_LAYER_METADATA: json.dumps({"base": self.base_etag, "column": self.column,
                                             "replaced": self.replaced.to_list(), "sorted_by": self.sorted_by})}

    @staticmethod
    def decode(body: bytes, where: pl.Expr | None = None) -> "_Layer":
        described = json.loads(pl.read_parquet_metadata(io.BytesIO(body))[_LAYER_METADATA])
        scan = pl.scan_parquet(io.BytesIO(body))
        return _Layer(described["base"], described["column"], pl.Series(described["replaced"], dtype=pl.Utf8),
                      described["sorted_by"], (scan.filter(where) if where is not None else scan).collect())


def _on_base(base: pl.DataFrame, layer: _Layer | None) -> pl.DataFrame:
    """The frame: the base's rows not replaced, and the layer's."""
    if layer is None:
        return base
    if layer.sorted_by is None:
        return pl.concat([base, layer.rows])
    merged = merge_disjoint(base, layer.rows, layer.sorted_by)
    if in_order(merged, [layer.sorted_by]):
        return merged
    raise ValueError(f"a staged frame and its layer are not in order of {layer.sorted_by}")


class _Written:
    """Frames this process wrote or read whole, by (bucket, key), with the ETags S3 gave them
    (the base's, and the layer's or None)."""

    def __init__(self, budget: int):
        self.budget = budget
        self._frames: OrderedDict[tuple[str, str], tuple[tuple, pl.DataFrame, int]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, bucket: str, key: str, etags: tuple, frame: pl.DataFrame) -> None:
        size = frame.estimated_size()
        with self._lock:
            self._frames.pop((bucket, key), None)
            if size > self.budget:
                return
            self._frames[(bucket, key)] = (etags, frame, size)
            while sum(s for _, _, s in self._frames.values()) > self.budget:
                self._frames.popitem(last=False)

    def get(self, bucket: str, key: str) -> tuple[tuple, pl.DataFrame] | None:
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


def forget_kept_frames() -> None:
    """Read every frame from S3 from now on, as a new process does (tests run many runs in one)."""
    _written.clear()


def encode(frame: pl.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """zstd level 1: intermediate data is read back soon, by machines; a third of LZ4's size at
    little more cost."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=False, metadata=metadata)
    return buffer.getvalue()


def write_frame(client, bucket: str, asset: str, day: date, name: str, frame: pl.DataFrame,
                change: Change | None = None) -> int:
    """Store one frame: as a layer on the frame staged before when `change` describes how it
    differs from it and the layer stays small (LAYER_SHARE), else whole. Returns bytes written."""
    key, on_top = staging_key(asset, day, name), layer_key(asset, day, name)
    _written.forget(bucket, key)  # a failed write must not leave the older frame served from memory
    if change is not None and change.replaced.len() == 0 and change.rows.height == 0:
        etags = (_etag(client, bucket, key), _etag(client, bucket, on_top))
        if etags[0] is not None:  # nothing replaced: the staged frame is this one already
            _written.keep(bucket, key, etags, frame)
            return 0
    layer = _next_layer(client, bucket, key, on_top, change, frame.height) if change is not None else None
    if layer is None:
        data = encode(frame)
        base_etag = client.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
        client.delete_object(Bucket=bucket, Key=on_top)
        _written.keep(bucket, key, (base_etag, None), frame)
        return len(data)
    data = encode(layer.rows, layer.metadata())
    layer_etag = client.put_object(Bucket=bucket, Key=on_top, Body=data)["ETag"]
    _written.keep(bucket, key, (layer.base_etag, layer_etag), frame)
    return len(data)


def _next_layer(client, bucket: str, key: str, on_top: str, change: Change, height: int) -> _Layer | None:
    """The layer that makes the staged frame the new one; None when it must be written whole
    (nothing staged, or the layer would be too large)."""
    base_etag = _etag(client, bucket, key)
    if base_etag is None:
        return None
    try:
        body = client.get_object(Bucket=bucket, Key=on_top)["Body"].read()
        previous = _Layer.decode(body)
    except client.exceptions.NoSuchKey:
        previous = None
    if previous is not None and (previous.base_etag != base_etag or previous.column != change.column
                                 or previous.sorted_by != change.sorted_by):
        return None
    replaced = change.replaced.cast(pl.Utf8)
    rows = change.rows
    if not rows.select(pl.col(change.column).is_in(replaced.implode()).all()).item():
        return None  # rows not announced as replacing: a layer could repeat rows of the base
    if previous is not None:
        kept = previous.rows.filter(~pl.col(change.column).is_in(replaced.implode()))
        rows = merge_disjoint(kept, rows, change.sorted_by) if change.sorted_by else pl.concat([kept, rows])
        replaced = pl.concat([previous.replaced, replaced]).unique().sort()
    if rows.height > LAYER_SHARE * height:
        return None
    return _Layer(base_etag, change.column, replaced, change.sorted_by, rows)


def write_frames(client, bucket: str, asset: str, day: date, frames: dict[str, pl.DataFrame],
                 changes: dict[str, Change] | None = None) -> int:
    """Store several frames of one asset at once (encoding and upload overlap on threads:
    Parquet encoding and the network both run outside Python's lock). Returns bytes written."""
    changes = changes or {}
    with ThreadPoolExecutor(max_workers=len(frames) or 1) as pool:
        sizes = [pool.submit(write_frame, client, bucket, asset, day, name, frame, changes.get(name))
                 for name, frame in frames.items()]
        return sum(size.result() for size in sizes)


def delete_frame(client, bucket: str, asset: str, day: date, name: str) -> None:
    key = staging_key(asset, day, name)
    _written.forget(bucket, key)
    client.delete_object(Bucket=bucket, Key=layer_key(asset, day, name))
    client.delete_object(Bucket=bucket, Key=key)


def delete_frames_starting(client, bucket: str, asset: str, day: date, start: str) -> None:
    """Delete every frame of the asset's day whose name starts with `start` (a digest kept in
    parts, say, whatever their number)."""
    prefix = staging_key(asset, day, start).removesuffix(".parquet")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for key in [item["Key"] for page in pages for item in page.get("Contents", [])]:
        _written.forget(bucket, key)
        client.delete_object(Bucket=bucket, Key=key)


def frame_exists(client, bucket: str, asset: str, day: date, name: str) -> bool:
    return _etag(client, bucket, staging_key(asset, day, name)) is not None


def _etag(client, bucket: str, key: str) -> str | None:
    try:
        return client.head_object(Bucket=bucket, Key=key)["ETag"]
    except client.exceptions.ClientError:
        return None


LAYOUT = "shards"
# Frames of a whole day even when its readings are staged in shards: the layout, and the landing
# files read (any file may hold rows of any shard).
DAY_FRAMES = (LAYOUT, "files")


def shard_frame(name: str, shard: Shard) -> str:
    """The name under which a shard's frame is staged (a one-shard day's is the frame's own)."""
    return name if shard.whole_day else f"shards={shard.count}/shard={shard.index:04d}/{name}"


def write_layout(client, bucket: str, asset: str, day: date, shards: int) -> None:
    """Staged last, after every shard's frames: until then readers take the previous layout's.
    When the count changes, the previous layout's bases go (nothing is ever built on its frames
    again, should the count come back)."""
    previous = layout(client, bucket, asset, day)
    if previous == shards:
        return
    write_frame(client, bucket, asset, day, LAYOUT, pl.DataFrame({"shards": [shards]}, schema={"shards": pl.UInt32}))
    for k in range(previous):
        delete_frame(client, bucket, asset, day, shard_frame("basis", Shard(k, previous)))


def layout(client, bucket: str, asset: str, day: date) -> int:
    """The shard count the asset's day was staged with (1 when it has no layout)."""
    frame = _read_one(client, bucket, asset, day, LAYOUT, None, None)
    return 1 if frame is None or frame.height == 0 else int(frame["shards"][0])


def read_shard_frame(client, bucket: str, asset: str, day: date, name: str, shard: Shard,
                     columns: list[str] | None = None) -> pl.DataFrame | None:
    """The shard's rows of the asset's day frame: its own frame when the day was staged with the
    same shard count, else the rows of its meters from the day as staged (a count that changed)."""
    if layout(client, bucket, asset, day) == shard.count:
        return read_frame(client, bucket, asset, day, name, columns=columns, shard=shard)
    return read_frame(client, bucket, asset, day, name, columns=columns,
                      where=None if shard.whole_day else shard.meters)


def read_frame(
    client, bucket: str, asset: str, day: date, name: str, columns: list[str] | None = None,
    where: pl.Expr | None = None, shard: Shard | None = None,
) -> pl.DataFrame | None:
    """The frame, or None when it was never staged; `where` keeps only the matching rows, which
    are then all a large frame costs in memory (the filter runs while the Parquet is decoded).
    `shard`: that shard's own frame (as its step staged it). Without, the day's: of a day staged
    in shards, every shard's frame together."""
    if shard is not None:
        return _read_one(client, bucket, asset, day, shard_frame(name, shard), columns, where)
    if name not in DAY_FRAMES:
        shards = layout(client, bucket, asset, day)
        if shards > 1:
            return _across_shards(client, bucket, asset, day, name, shards, columns, where)
    return _read_one(client, bucket, asset, day, name, columns, where)


def _across_shards(client, bucket, asset, day, name, shards, columns, where) -> pl.DataFrame | None:
    """The shards' frames together, in meter order (each shard's is in its own order, which the
    stable sort keeps within a meter); None when a shard's is missing."""
    parts = [_read_one(client, bucket, asset, day, shard_frame(name, Shard(k, shards)), columns, where)
             for k in range(shards)]
    if any(part is None for part in parts):
        return None
    frame = pl.concat(parts, how="vertical")
    return frame.sort("meter_id", maintain_order=True) if "meter_id" in frame.columns else frame


def _read_one(client, bucket: str, asset: str, day: date, name: str, columns: list[str] | None,
              where: pl.Expr | None) -> pl.DataFrame | None:
    key, on_top = staging_key(asset, day, name), layer_key(asset, day, name)
    kept = _written.get(bucket, key)
    if kept is not None:
        etags, frame = kept
        if (_etag(client, bucket, key), _etag(client, bucket, on_top)) == etags:
            frame = frame.filter(where) if where is not None else frame
            return frame.select(columns) if columns is not None else frame
        _written.forget(bucket, key)
    try:
        on_top_object = client.get_object(Bucket=bucket, Key=on_top)
        layer_body, layer_etag = on_top_object["Body"].read(), on_top_object["ETag"]
    except client.exceptions.NoSuchKey:
        layer_body, layer_etag = None, None
    try:
        base = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        return None
    body = base["Body"].read()
    if layer_body is None:
        if where is None and columns is None:
            frame = pl.read_parquet(io.BytesIO(body))
            _written.keep(bucket, key, (base["ETag"], None), frame)
            return frame
        scan = pl.scan_parquet(io.BytesIO(body))
        scan = scan.filter(where) if where is not None else scan
        return (scan.select(columns) if columns is not None else scan).collect()
    layer = _Layer.decode(layer_body, where)
    if layer.base_etag != base["ETag"]:
        return None  # the base was written again but its layer not removed: no consistent frame
    not_replaced = ~pl.col(layer.column).is_in(layer.replaced.implode())
    scan = pl.scan_parquet(io.BytesIO(body)).filter(not_replaced if where is None else not_replaced & where)
    frame = _on_base(scan.select(layer.rows.columns).collect(), layer)
    if where is None and columns is None:  # put together once: the next steps of the run take it as it is
        _written.keep(bucket, key, (base["ETag"], layer_etag), frame)
    return frame.select(columns) if columns is not None else frame
