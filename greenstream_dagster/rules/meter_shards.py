"""Meter shards (SPEC §10): a day split by a stable hash of meter_id.

Every rule of §2–§4 and §3a is per meter (an interval key holds one meter, the
fault window and the score look at one meter's readings, meter_daily, the
registry and the silent meters are rows per meter), so the rows of one meter,
all of them and nothing else, are enough to compute that meter's results. A
shard is a set of meters; the day's results are the shards' results put
together, whatever the number of shards.

The shard of a meter is a pure function of its id and the shard count, the same
in every process, on every machine, with every Polars version: the id's digits
(a placeable id is `SM-` and 1 to 12 digits) mixed by SplitMix64's finalizer in
wrapping 64-bit arithmetic, then reduced modulo the count. Python's and Polars'
own hashes are seeded or may change between releases, so neither is used.
Meters numbered in steps (every tenth id, say) still spread evenly.

A row whose meter_id is not a placeable id (missing, malformed) belongs to no
meter: it is quarantined on its own (§2), and such rows go to shard 0.

Two pure pieces of the split (Polars only, no I/O): `parse_batches` groups a
day's landing objects by size, so each object is parsed once, by one worker,
with memory bounded by its batch; `route` hands that worker's rows to their
shards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.schemas import METER_ID_PATTERN

DEFAULT_METERS_PER_SHARD = 50_000
_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def shard_count(meters: int, meters_per_shard: int = DEFAULT_METERS_PER_SHARD, configured: int = 0) -> int:
    """The day's shards: `configured` when set (> 0), else enough for `meters_per_shard` each."""
    if configured > 0:
        return configured
    if meters_per_shard < 1:
        raise ValueError(f"meters_per_shard must be at least 1, got {meters_per_shard}")
    return max(1, math.ceil(meters / meters_per_shard))


def placeable_meters(meter_id: pl.Series) -> pl.Series:
    """The distinct meters a day's rows name: its placeable ids (the rows of any other id are
    quarantined and name no meter, so they do not make a day need another shard)."""
    return meter_id.filter(meter_id.str.contains(METER_ID_PATTERN).fill_null(False)).unique()


def meter_shard(shards: int, meter_id: pl.Expr | None = None) -> pl.Expr:
    """The shard (0 … shards-1, UInt32) of each row's meter_id; shard 0 for an id no meter has."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    meter_id = pl.col("meter_id") if meter_id is None else meter_id
    placeable = meter_id.str.contains(METER_ID_PATTERN).fill_null(False)
    number = meter_id.str.slice(3).cast(pl.UInt64, strict=False)
    mixed = _splitmix64(number)
    return pl.when(placeable).then(mixed % shards).otherwise(0).cast(pl.UInt32)


def route(rows: pl.DataFrame, shards: int) -> dict[int, pl.DataFrame]:
    """Every shard's rows (an empty frame for a shard without any), in their order within each shard."""
    if shards == 1:
        return {0: rows}
    parts = rows.with_columns(meter_shard(shards).alias("_shard")).partition_by(
        "_shard", as_dict=True, include_key=False, maintain_order=True)
    empty = rows.clear()
    return {k: parts.get((k,), empty) for k in range(shards)}


def _splitmix64(x: pl.Expr) -> pl.Expr:
    """SplitMix64's finalizer (Steele, Lea, Flood 2014): every input bit moves every output bit."""
    x = x ^ _shifted_right(x, 30)
    x = x * pl.lit(_MIX[0], dtype=pl.UInt64)
    x = x ^ _shifted_right(x, 27)
    x = x * pl.lit(_MIX[1], dtype=pl.UInt64)
    return x ^ _shifted_right(x, 31)


def _shifted_right(x: pl.Expr, bits: int) -> pl.Expr:
    return x // pl.lit(1 << bits, dtype=pl.UInt64)  # an unsigned shift (Polars has no >> on expressions)



@dataclass(frozen=True)
class Shard:
    """Shard `index` of a day split into `count`: the meters whose meter_shard is `index`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")

    @property
    def meters(self) -> pl.Expr:
        """True on the rows of this shard's meters."""
        return meter_shard(self.count) == self.index

    @property
    def whole_day(self) -> bool:
        return self.count == 1

    @property
    def label(self) -> str:
        """A name for the shard's steps and metadata: shard_0003_of_0016."""
        return f"shard_{self.index:04d}_of_{self.count:04d}"


WHOLE_DAY = Shard(0, 1)


def day_shards(count: int) -> list[Shard]:
    return [Shard(k, count) for k in range(count)]


def parse_batches(objects: Sequence[LandingObject], max_bytes: int) -> list[list[LandingObject]]:
    """The day's landing objects → batches of at most `max_bytes` listed bytes, each parsed by one worker.

    Greedy in the given order (a listing is in key order, so batches are stable from run to
    run); an object larger than `max_bytes` is a batch alone. A parse worker's memory follows
    its batch's bytes (the rows read and their copy routed to shards), so the batch size
    bounds it whatever the day's size. Sizes are as listed: a gzip object counts its stored
    bytes, so its batch holds more rows; give such days a smaller `max_bytes`.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    batches: list[list[LandingObject]] = []
    held = 0
    for obj in objects:
        if not batches or held + obj.size > max_bytes:
            batches.append([])
            held = 0
        batches[-1].append(obj)
        held += obj.size
    return batches
