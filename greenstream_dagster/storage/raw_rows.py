"""A day's raw rows staged by meter shard, read in parse batches so that no process holds the day (SPEC §10).

Three parts, each a step of raw_readings (defs/readings/raw.py) and each bounded
by its unit, not by the day:

1. **Plan** (`plan_read`). The objects to read (new or changed since the day's
   last read, rules/landing_reuse.py) are grouped into batches of at most
   `GREENSTREAM_PARSE_BATCH_BYTES` listed bytes (`parse_batches`).
2. **Parse** (`parse_batch`), one step per batch, any number at once: the batch
   is fetched and parsed once and its rows routed to their meter shards. The
   day's shard count is not known yet (it follows the meters of all batches and
   of the reused objects), so each batch routes by a guess: the day's previous
   count, or the count its own rows suggest for the whole listing. With more
   than one batch, the routed rows and the batch's meters are staged as pieces
   (`parsed/…`); a lone batch goes straight on to part 3 in its own step.
3. **Shards** (`stage_shards`). The day's count is set from its meters; then
   each shard's rows are the previous read's rows of the reused objects in that
   shard, and the shard's pieces (of a batch that guessed another count, every
   piece of the batch filtered to the shard's meters while it is decoded),
   staged as the shard's `rows` frame with how it differs from the previous
   read (so standardizing redoes only the meters it touched). The layout
   follows, then (by the caller) the files.

Every row of an interval key lands in one shard (the shard is a function of the
meter), so delivery order, revisions and duplicates stay exact across files and
batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from greenstream_dagster.asset_names import RAW
from greenstream_dagster.rules.bounded_text import bounded
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


@dataclass(frozen=True)
class ReadPlan:
    """What the day's read does: handed as JSON from the planning step to every parse step and the last."""

    reused: list[LandingObject]  # unchanged since the previous read: their rows are taken from it
    removed: list[str]  # keys read before and gone now (accepted by the caller)
    batches: list[list[LandingObject]]  # to parse; at least one (empty when nothing is to be parsed)
    previous: int  # the previous read's shard count (1 when there was none)

    @property
    def listed_bytes(self) -> int:
        return sum(obj.size for batch in self.batches for obj in batch)

    def to_json(self) -> dict:
        return {"reused": [_object_json(o) for o in self.reused], "removed": self.removed,
                "batches": [[_object_json(o) for o in batch] for batch in self.batches], "previous": self.previous}

    @classmethod
    def from_json(cls, value: dict) -> ReadPlan:
        return cls([_object_of(o) for o in value["reused"]], list(value["removed"]),
                   [[_object_of(o) for o in batch] for batch in value["batches"]], int(value["previous"]))


@dataclass
class BatchRead:
    """What parsing one batch gave; as JSON, the parse step's summary."""

    number: int
    guess: int  # the shard count its rows were routed by
    files: list[LandingObject] = field(default_factory=list)
    dead_letters: list[tuple[LandingObject, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0

    def to_json(self) -> dict:
        return {"number": self.number, "guess": self.guess, "rows": self.rows,
                "files": [_object_json(o) for o in self.files],
                "dead_letters": [[_object_json(o), reason] for o, reason in self.dead_letters],
                "ignored": [list(item) for item in self.ignored]}

    @classmethod
    def from_json(cls, value: dict) -> BatchRead:
        return cls(int(value["number"]), int(value["guess"]), [_object_of(o) for o in value["files"]],
                   [(_object_of(o), reason) for o, reason in value["dead_letters"]],
                   [(key, reason) for key, reason in value["ignored"]], int(value["rows"]))


def plan_read(client, bucket: str, day: date, reuse: LandingReuse, removed: list[str], split: Split,
              previous: int) -> ReadPlan:
    """The day's batches (`previous`: the shard count of the day's last read); pieces left by a
    read cut short are removed first."""
    staging.delete_frames_starting(client, bucket, RAW, day, PIECES)
    batches = parse_batches(reuse.to_read, split.batch_bytes) or [[]]
    return ReadPlan(list(reuse.reused), list(removed), batches, previous)


def parse_batch(client, bucket: str, day: date, plan: ReadPlan, number: int, limits: ReadingLimits,
                split: Split) -> tuple[BatchRead, dict[int, pl.DataFrame], pl.Series]:
    """Batch `number` fetched, parsed and routed: its summary, its rows by guessed shard, its meters."""
    batch = plan.batches[number]
    parsed = read_landing_partition(batch, day, lambda key: landing.read_object(client, bucket, key), limits=limits)
    meters = placeable_meters(parsed.rows["meter_id"])
    guess = split.configured or plan.previous
    if not (split.configured or plan.previous > 1) and batch:  # a first read: the whole listing as this batch
        share = plan.listed_bytes / max(1, sum(o.size for o in batch))
        guess = shard_count(round(meters.len() * share), split.meters_per_shard)
    dead_letters = [(obj, bounded(reason, limits.max_stored_chars)) for obj, reason in parsed.dead_letters]
    read = BatchRead(number, guess, parsed.files, dead_letters, parsed.ignored, parsed.rows.height)
    return read, route(parsed.rows, guess), meters


def stage_pieces(client, bucket: str, day: date, read: BatchRead, routed: dict[int, pl.DataFrame],
                 meters: pl.Series) -> None:
    """A batch of a multi-batch read, staged for the shards' part: its rows by shard, its meters."""
    frames = {_piece(read.number, Shard(k, read.guess)): rows for k, rows in routed.items()}
    frames[_meters_piece(read.number)] = meters.to_frame()
    staging.write_frames(client, bucket, RAW, day, frames)


def stage_shards(client, bucket: str, day: date, plan: ReadPlan, split: Split, batches: list[BatchRead],
                 held: dict[int, pl.DataFrame] | None = None, meters: pl.Series | None = None) -> tuple[int, int]:
    """Stage every shard's rows and the day's layout; returns (rows, shard count).

    `held` and `meters` are a lone batch's, still in memory; otherwise every batch's
    pieces are read from staging.
    """
    if meters is None:
        meters = pl.concat([_read_piece(client, bucket, day, _meters_piece(b.number))["meter_id"] for b in batches])
    if split.configured == 0 and plan.reused:
        meters = pl.concat([meters, _reused_meters(client, bucket, day, plan)])
    count = shard_count(meters.unique().len(), split.meters_per_shard, split.configured)
    replaced = pl.Series([*(o.key for batch in plan.batches for o in batch), *plan.removed], dtype=pl.Utf8)
    rows = 0
    for shard in day_shards(count):
        fresh = _fresh_rows(client, bucket, day, batches, held, shard)
        shard_rows = fresh
        if plan.reused:
            shard_rows = pl.concat([_reused_rows(client, bucket, day, plan.reused, shard), fresh])
        # Against the rows of another split, a change means nothing: each shard is then written whole.
        change = staging.Change("source_key", replaced, fresh) if plan.reused and plan.previous == count else None
        staging.write_frame(client, bucket, RAW, day, staging.shard_frame("rows", shard), shard_rows, change=change)
        rows += shard_rows.height
    staging.write_layout(client, bucket, RAW, day, count)
    return rows, count


def remove_pieces(client, bucket: str, day: date) -> None:
    staging.delete_frames_starting(client, bucket, RAW, day, PIECES)


def _fresh_rows(client, bucket: str, day: date, batches: list[BatchRead], held: dict[int, pl.DataFrame] | None,
                shard: Shard) -> pl.DataFrame:
    """The rows parsed this time that belong to `shard`, batch after batch."""
    if held is not None:
        if batches[0].guess == shard.count:
            return held[shard.index]
        return pl.concat(held.values()).filter(shard.meters)
    frames = [pl.DataFrame(schema=RAW_ROW_COLUMNS)]
    for read in batches:
        if read.guess == shard.count:
            frames.append(_read_piece(client, bucket, day, _piece(read.number, shard)))
        else:  # routed by another count: each of its pieces' rows of this shard, filtered while decoded
            frames += [_read_piece(client, bucket, day, _piece(read.number, Shard(k, read.guess)), where=shard.meters)
                       for k in range(read.guess)]
    return pl.concat(frames)


def _read_piece(client, bucket: str, day: date, name: str, where: pl.Expr | None = None) -> pl.DataFrame:
    """A staged piece, read as the one frame it is (not across the day's shards)."""
    frame = staging.read_frame(client, bucket, RAW, day, name, where=where, shard=WHOLE_DAY)
    if frame is None:
        raise RuntimeError(f"raw_readings {day}: the parsed piece {name} went missing during the read; run the day again")
    return frame


def _reused_rows(client, bucket: str, day: date, reused: list[LandingObject], shard: Shard) -> pl.DataFrame:
    """The previous read's rows of the reused objects in `shard` (from its layout, whatever its count)."""
    rows = staging.read_shard_frame(client, bucket, RAW, day, "rows", shard)
    if rows is None:
        raise RuntimeError(f"raw_readings {day}: the rows staged for {shard.label} went missing during the read")
    return reused_rows(rows, reused)


def _reused_meters(client, bucket: str, day: date, plan: ReadPlan) -> pl.Series:
    """The meters of the reused objects' rows (for the day's shard count), one previous shard at a time."""
    found = [pl.Series("meter_id", [], dtype=pl.Utf8)]
    for shard in day_shards(plan.previous):
        frame = staging.read_frame(client, bucket, RAW, day, "rows", columns=["meter_id", "source_key"], shard=shard)
        if frame is not None:
            found.append(placeable_meters(reused_rows(frame, plan.reused)["meter_id"]))
    return pl.concat(found).unique()


def _piece(batch: int, shard: Shard) -> str:
    return f"{PIECES}batch={batch:04d}/shards={shard.count:04d}/shard={shard.index:04d}"


def _meters_piece(batch: int) -> str:
    return f"{PIECES}batch={batch:04d}/meters"


def _object_json(obj: LandingObject) -> dict:
    return {"key": obj.key, "size": obj.size, "etag": obj.etag, "last_modified": obj.last_modified.isoformat()}


def _object_of(value: dict) -> LandingObject:
    return LandingObject(value["key"], int(value["size"]), value["etag"], datetime.fromisoformat(value["last_modified"]))
