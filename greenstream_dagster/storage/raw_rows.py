"""A day's raw rows staged by meter shard, read in parse batches so that no process holds the day (SPEC §10).

Two passes, each bounded by its unit, not by the day:

1. **Parse.** The objects to read (new or changed since the day's last read,
   rules/landing_reuse.py) are grouped into batches of at most
   `GREENSTREAM_PARSE_BATCH_BYTES` listed bytes (`parse_batches`); each batch is
   fetched and parsed once, its rows routed to their meter shards and, when
   the day has more than one batch, staged as pieces (`parsed/…`). The shard
   count is not known yet (it follows the day's meters, all batches' and the
   reused objects'), so the pieces are routed by a guess: the day's previous
   count, or the count the first batch suggests for the whole.
2. **Shard.** The day's count is set from its meters; then each shard's rows
   are the previous read's rows of the reused objects in that shard, and the
   shard's pieces (when the guess was wrong, every piece filtered to the
   shard's meters while it is decoded), staged as the shard's `rows` frame with
   how it differs from the previous read (so standardizing redoes only the
   meters it touched). The layout follows, then (by the caller) the files.

Every row of an interval key lands in one shard (the shard is a function of the
meter), so delivery order, revisions and duplicates stay exact across files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from greenstream_dagster.asset_names import RAW
from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_partition import read_landing_partition
from greenstream_dagster.rules.landing_reuse import LandingReuse, reused_rows
from greenstream_dagster.rules.meter_shards import WHOLE_DAY, Shard, day_shards, parse_batches, placeable_meters, route, shard_count
from greenstream_dagster.rules.reading_limits import ReadingLimits
from greenstream_dagster.rules.schemas import RAW_ROW_COLUMNS
from greenstream_dagster.storage import landing, staging

PIECES = "parsed/"  # staged pieces of a multi-batch read, removed once the shards are staged


@dataclass(frozen=True)
class Split:
    """How the day is split: the shard count given by the settings, or one shard per
    `meters_per_shard` of the day's meters."""

    meters_per_shard: int
    configured: int = 0  # > 0: this many shards, whatever the meters
    batch_bytes: int = 256 * 1024 * 1024  # GREENSTREAM_PARSE_BATCH_BYTES


@dataclass
class RawDay:
    """What reading the day gave: its files, dead letters and ignored keys, rows and shards."""

    files: list[LandingObject] = field(default_factory=list)  # read: reused, then parsed
    dead_letters: list[tuple[LandingObject, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    shards: int = 1
    batches: int = 0

    @property
    def csv_bytes(self) -> int:
        return sum(obj.size for obj in self.files)


def stage_raw_day(client, bucket: str, day: date, reuse: LandingReuse, removed: Sequence[str],
                  limits: ReadingLimits, split: Split) -> RawDay:
    """Parse what `reuse` says to read, batch by batch, and stage every shard's rows and the layout."""
    staging.delete_frames_starting(client, bucket, RAW, day, PIECES)  # left by a read cut short
    previous = staging.layout(client, bucket, RAW, day)
    read = RawDay(files=list(reuse.reused))
    pieces, guess, meters = _parse(client, bucket, day, reuse.to_read, limits, split, previous, read)
    if split.configured == 0 and reuse.reused:
        meters = pl.concat([meters, _reused_meters(client, bucket, day, reuse.reused, previous)]).unique()
    count = shard_count(meters.len(), split.meters_per_shard, split.configured)
    replaced = pl.Series([*(o.key for o in reuse.to_read), *removed], dtype=pl.Utf8)
    for shard in day_shards(count):
        fresh = _fresh_rows(client, bucket, day, pieces, guess, shard, read.batches)
        rows = fresh
        if reuse.reused:
            rows = pl.concat([_reused_rows(client, bucket, day, reuse.reused, shard, previous), fresh])
        # Against the rows of another split, a change means nothing: each shard is then written whole.
        change = staging.Change("source_key", replaced, fresh) if reuse.reused and previous == count else None
        staging.write_frame(client, bucket, RAW, day, staging.shard_frame("rows", shard), rows, change=change)
        read.rows += rows.height
    staging.write_layout(client, bucket, RAW, day, count)
    if read.batches > 1:
        staging.delete_frames_starting(client, bucket, RAW, day, PIECES)
    read.shards = count
    return read


def _parse(client, bucket: str, day: date, objects: list[LandingObject], limits: ReadingLimits, split: Split,
           previous: int, read: RawDay) -> tuple[dict[int, pl.DataFrame], int, pl.Series]:
    """Pass 1: each batch parsed and routed by the guessed count; returns the pieces held in memory
    (a one-batch read; a longer one stages them), the guess and the meters of the rows parsed."""
    batches = parse_batches(objects, split.batch_bytes)
    read.batches = len(batches)
    held: dict[int, pl.DataFrame] = {}
    guess = split.configured or previous
    meters = pl.Series("meter_id", [], dtype=pl.Utf8)
    for number, batch in enumerate(batches):
        parsed = read_landing_partition(batch, day, lambda key: landing.read_object(client, bucket, key), limits=limits)
        read.files += parsed.files
        read.dead_letters += parsed.dead_letters
        read.ignored += parsed.ignored
        batch_meters = placeable_meters(parsed.rows["meter_id"])
        meters = pl.concat([meters, batch_meters]).unique()
        if number == 0 and not (split.configured or previous > 1):  # a first read: guess from the first batch
            listed = sum(o.size for o in objects) / max(1, sum(o.size for o in batch))
            guess = shard_count(round(batch_meters.len() * listed), split.meters_per_shard)
        routed = route(parsed.rows, guess)
        if len(batches) == 1:
            held = routed
        else:
            for shard, rows in routed.items():
                staging.write_frame(client, bucket, RAW, day, _piece(number, Shard(shard, guess)), rows)
    return held, guess, meters


def _fresh_rows(client, bucket: str, day: date, held: dict[int, pl.DataFrame], guess: int, shard: Shard,
                batches: int) -> pl.DataFrame:
    """The rows parsed this time that belong to `shard`, batch after batch."""
    if batches == 0:
        return pl.DataFrame(schema=RAW_ROW_COLUMNS)
    if batches == 1:
        if guess == shard.count:
            return held[shard.index]
        return pl.concat(held.values()).filter(shard.meters)
    if guess == shard.count:
        frames = [_read_piece(client, bucket, day, _piece(b, shard)) for b in range(batches)]
    else:  # pieces routed by a wrong guess: each piece's rows of this shard, filtered while decoded
        frames = [_read_piece(client, bucket, day, _piece(b, Shard(k, guess)), where=shard.meters)
                  for b in range(batches) for k in range(guess)]
    return pl.concat(frames)


def _read_piece(client, bucket: str, day: date, name: str, where: pl.Expr | None = None) -> pl.DataFrame:
    """A staged piece, read as the one frame it is (not across the day's shards)."""
    frame = staging.read_frame(client, bucket, RAW, day, name, where=where, shard=WHOLE_DAY)
    if frame is None:
        raise RuntimeError(f"raw_readings {day}: the parsed piece {name} went missing during the read; run the day again")
    return frame


def _reused_rows(client, bucket: str, day: date, reused: list[LandingObject], shard: Shard,
                 previous: int) -> pl.DataFrame:
    """The previous read's rows of the reused objects in `shard` (from its layout of `previous` shards)."""
    rows = staging.read_shard_frame(client, bucket, RAW, day, "rows", shard)
    if rows is None:
        raise RuntimeError(f"raw_readings {day}: the rows staged for {shard.label} went missing during the read")
    return reused_rows(rows, reused)


def _reused_meters(client, bucket: str, day: date, reused: list[LandingObject], previous: int) -> pl.Series:
    """The meters of the reused objects' rows (for the day's shard count), one previous shard at a time."""
    found = [pl.Series("meter_id", [], dtype=pl.Utf8)]
    for shard in day_shards(previous):
        frame = staging.read_frame(client, bucket, RAW, day, "rows", columns=["meter_id", "source_key"], shard=shard)
        if frame is not None:
            found.append(placeable_meters(reused_rows(frame, reused)["meter_id"]))
    return pl.concat(found).unique()


def _piece(batch: int, shard: Shard) -> str:
    return f"{PIECES}batch={batch:04d}/shards={shard.count:04d}/shard={shard.index:04d}"

