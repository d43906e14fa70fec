"""Standardize and score a day again by redoing only the meters a change touched.

The rules are in rules/meter_delta.py; this module keeps, beside each asset's
staged frames, what they were built from, so the next run knows what changed:

- `standardized_readings/…/basis`: the landing files (key, ETag, size,
  last-modified) and the rules the frames were made from, and their version;
- `standardized_readings/…/delta`: that version, the version it was built on
  (None when made whole) and the meters it redid (`touched`);
- `scored_readings/…/basis`: the standardized version of day D and of each
  window day it was scored with, and the rules. The scored day's `estimates`
  (§3b) are redone with its touched meters and kept with the others.

A basis is deleted before its frames are written and written after them, so
frames left half-written by a failed step are never built on: the next run
makes the day whole. Anything that does not match (other rules, a window day
standardized again, two changes since the last scoring) also makes it whole.

A day split into meter shards (SPEC §10) keeps all of this per shard: each
shard's frames, basis and delta beside the others', built from the day's landing
files (a file's change may touch any shard) and the shard's own rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import polars as pl

from greenstream_dagster.asset_names import RAW, SCORED, STANDARDIZED
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.meter_delta import (
    Basis,
    changed_keys,
    merge_scored,
    merge_standardized,
    rows_to_redo,
    rules_fingerprint,
    touched_meters,
)
from greenstream_dagster.rules.meter_shards import WHOLE_DAY, Shard
from greenstream_dagster.rules.score import Scored, score_partition
from greenstream_dagster.rules.standardize import Standardized, standardize
from greenstream_dagster.storage import staging

STANDARDIZED_FRAMES = ("readings", "rejected", "revisions", "meter_stats")
DELTA_SCHEMA = {"version": pl.Utf8, "based_on": pl.Utf8}
ABSENT = "absent"  # the version of a window day never standardized (an empty day, a day before the start)


@dataclass(frozen=True)
class Redone:
    """A day's result and how much of it was redone (None: all of it)."""

    result: Standardized | Scored
    touched_meters: int | None
    version: str | None = None  # standardized only
    based_on: str | None = None
    touched: pl.Series | None = None
    basis: Basis | None = None
    unchanged: bool = False  # the staged frames are this result already: nothing to write
    part: Standardized | Scored | None = None  # what was redone, when only part of the day was

    def change(self, sorted_by: str | None = None) -> staging.Change | None:
        """How the readings differ from the staged ones: the touched meters' were redone."""
        if self.part is None or self.touched is None:
            return None
        return staging.Change("meter_id", self.touched, self.part.readings, sorted_by)


def standardize_day(client, bucket: str, day: date, rows: pl.DataFrame, config: RulesConfig,
                    shard: Shard = WHOLE_DAY) -> Redone:
    """The shard's standardized frames (`rows`: its raw rows), redoing only what changed."""
    basis = Basis.of(staging.read_frame(client, bucket, RAW, day, "files"), config)
    previous_basis = staging.read_frame(client, bucket, STANDARDIZED, day, "basis", shard=shard)
    changed = changed_keys(previous_basis, basis)
    previous = _read_standardized(client, bucket, day, shard) if changed is not None else None
    if previous is None:
        return Redone(standardize(rows, day, config), None, uuid.uuid4().hex, basis=basis)
    if not changed:
        return Redone(previous, 0, previous_basis["version"][0], basis=basis, unchanged=True)
    touched = touched_meters(rows, previous, changed)
    redo = rows_to_redo(rows, touched, changed)
    part = standardize(redo, day, config)
    merged = merge_standardized(previous, part, touched, redo, changed)
    return Redone(merged, touched.len(), uuid.uuid4().hex, previous_basis["version"][0], touched, basis, part=part)


def stage_standardized(client, bucket: str, day: date, redone: Redone, write_frames, shard: Shard = WHOLE_DAY) -> object:
    """Write the frames (through `write_frames(frames, changes, readings)`, which checks the
    readings meanwhile; the readings as a layer when only some meters were redone), then the
    basis; only the check when nothing changed."""
    if redone.unchanged:
        return write_frames({}, {}, redone.result.readings)
    staging.delete_frame(client, bucket, STANDARDIZED, day, staging.shard_frame("basis", shard))
    frames = {name: getattr(redone.result, name) for name in STANDARDIZED_FRAMES}
    frames["touched"] = pl.DataFrame({"meter_id": redone.touched if redone.touched is not None else []},
                                     schema={"meter_id": pl.Utf8})
    frames["delta"] = pl.DataFrame({"version": [redone.version], "based_on": [redone.based_on]}, schema=DELTA_SCHEMA)
    outcome = write_frames(frames, {"readings": redone.change()}, redone.result.readings)
    staging.write_frame(client, bucket, STANDARDIZED, day, staging.shard_frame("basis", shard),
                        redone.basis.frame(redone.version))
    return outcome


def window_versions(client, bucket: str, days: list[date], shard: Shard = WHOLE_DAY) -> dict[date, str]:
    """The standardized version of each day (of the shard's meters); read BEFORE the frames it
    describes, so a day standardized meanwhile shows as changed at the next scoring (never the reverse)."""
    return {d: _standardized_version(client, bucket, d, shard) or ABSENT for d in days}


def score_day(client, bucket: str, day: date, readings: pl.DataFrame, history: dict[date, pl.DataFrame | None],
              config: RulesConfig, versions: dict[date, str], shard: Shard = WHOLE_DAY) -> tuple[Redone, pl.DataFrame]:
    """The day's scores and the basis to stage after them (`versions`: window_versions of the
    history days and of `day`)."""
    basis = pl.DataFrame({"day": list(versions), "version": list(versions.values())},
                         schema={"day": pl.Date, "version": pl.Utf8}).with_columns(
        pl.lit(rules_fingerprint(config)).alias("rules"))
    touched = _touched_since_scored(client, bucket, day, basis, shard)
    # The previous scores of the meters not touched only: the whole day is most of the step's memory.
    # Nothing touched: read whole, so the next steps of the run take the frame from memory.
    kept = _read_scored(client, bucket, day, ~pl.col("meter_id").is_in(touched.implode()) if touched.len() else None,
                        shard) if touched is not None else None
    present = [frame for frame in history.values() if frame is not None]
    if kept is None:
        return Redone(score_partition(readings, day, config, pl.concat(present) if present else None), None), basis
    if touched.len() == 0:
        return Redone(kept, 0, unchanged=True), basis
    chosen = pl.col("meter_id").is_in(touched.implode())
    part = score_partition(readings.filter(chosen), day, config,
                           pl.concat([f.filter(chosen) for f in present]) if present else None)
    return Redone(merge_scored(kept, part), touched.len(), touched=touched, part=part), basis


def stage_scored(client, bucket: str, day: date, redone: Redone, basis: pl.DataFrame, write_frames,
                 shard: Shard = WHOLE_DAY) -> object:
    if redone.unchanged:
        return write_frames({}, {}, redone.result.readings)
    staging.delete_frame(client, bucket, SCORED, day, staging.shard_frame("basis", shard))
    outcome = write_frames({"readings": redone.result.readings, "meters": redone.result.meters,
                            "estimates": redone.result.estimates},
                           {"readings": redone.change(sorted_by="meter_id")}, redone.result.readings)
    staging.write_frame(client, bucket, SCORED, day, staging.shard_frame("basis", shard), basis)
    return outcome


def _touched_since_scored(client, bucket: str, day: date, basis: pl.DataFrame, shard: Shard) -> pl.Series | None:
    """Meters to score again: none when nothing changed, the standardized delta's when exactly
    one incremental standardization came since; None when the day must be scored whole."""
    previous = staging.read_frame(client, bucket, SCORED, day, "basis", shard=shard)
    if previous is None or previous["rules"][0] != basis["rules"][0]:
        return None
    before = dict(previous.select("day", "version").iter_rows())
    now = dict(basis.select("day", "version").iter_rows())
    if any(before.get(d) != v for d, v in now.items() if d != day) or set(before) != set(now):
        return None  # a window day was standardized again (late data): its statistics changed
    if now[day] == ABSENT:
        return None
    if before[day] == now[day]:
        return pl.Series("meter_id", [], dtype=pl.Utf8)
    delta = staging.read_frame(client, bucket, STANDARDIZED, day, "delta", shard=shard)
    if delta is None or delta["based_on"][0] is None or delta["based_on"][0] != before[day]:
        return None
    touched = staging.read_frame(client, bucket, STANDARDIZED, day, "touched", shard=shard)
    return None if touched is None else touched["meter_id"]


def _standardized_version(client, bucket: str, day: date, shard: Shard) -> str | None:
    """The version of the day's standardized frames the shard reads: its own shard's, or, when
    the day was staged with another shard count, all of that day's shards' versions together."""
    count = staging.layout(client, bucket, STANDARDIZED, day)
    if count == shard.count:
        return _shard_version(client, bucket, day, shard)
    versions = [_shard_version(client, bucket, day, Shard(k, count)) for k in range(count)]
    return None if any(v is None for v in versions) else "+".join(versions)


def _shard_version(client, bucket: str, day: date, shard: Shard) -> str | None:
    basis = staging.read_frame(client, bucket, STANDARDIZED, day, "basis", columns=["version"], shard=shard)
    if basis is not None and basis.height:
        return basis["version"][0]
    delta = staging.read_frame(client, bucket, STANDARDIZED, day, "delta", shard=shard)
    return delta["version"][0] if delta is not None else None


def _read_standardized(client, bucket: str, day: date, shard: Shard) -> Standardized | None:
    frames = {name: staging.read_frame(client, bucket, STANDARDIZED, day, name, shard=shard)
              for name in STANDARDIZED_FRAMES}
    return None if any(f is None for f in frames.values()) else Standardized(**frames)


def _read_scored(client, bucket: str, day: date, where: pl.Expr | None, shard: Shard) -> Scored | None:
    readings = staging.read_frame(client, bucket, SCORED, day, "readings", where=where, shard=shard)
    meters = staging.read_frame(client, bucket, SCORED, day, "meters", where=where, shard=shard)
    estimates = staging.read_frame(client, bucket, SCORED, day, "estimates", where=where, shard=shard)
    if readings is None or meters is None or estimates is None:  # no estimates: staged before §3b, redo whole
        return None
    return Scored(readings=readings, meters=meters, estimates=estimates)
