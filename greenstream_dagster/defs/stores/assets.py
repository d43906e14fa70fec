"""The operational load (meter_readings) and the two lake assets (SPEC §5, §6)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import dagster as dg
import polars as pl

from greenstream_dagster.asset_names import LAKE_METER_DAILY, LAKE_READINGS, LOAD, RAW, SCORED, STANDARDIZED
from greenstream_dagster.defs.metadata import GRADE_COUNTS, grade_counts, grade_metadata_of
from greenstream_dagster.defs.partitions import partition_day
from greenstream_dagster.defs.policies import late_data_propagates, one_day, storage_step
from greenstream_dagster.defs.readings.assets import read_shard_upstream, read_upstream
from greenstream_dagster.defs.resources import OperationalStoreResource, S3Resource
from greenstream_dagster.rules.meter_daily import meter_daily
from greenstream_dagster.rules.meter_shards import Shard
from greenstream_dagster.rules.quality_score import LAKE_GRADES
from greenstream_dagster.storage import lake, staging
from greenstream_dagster.storage.bucket import Bucket
from greenstream_dagster.storage.operational.changed_rows import PreviousLoad
from greenstream_dagster.storage.operational.load import (
    DayLoad,
    LoadPart,
    LoadResult,
    fetch_previous_load_name,
    load_partition,
)
from greenstream_dagster.storage.operational.queries import count_day_readings
from greenstream_dagster.storage.operational.store import OperationalStore

# Within a run, the load goes as soon as the scored readings are staged, before the lake and
# fleet steps that are ready at the same time: the operational store is where fresh readings
# are awaited. (Dagster starts ready steps by this tag, then in name order.)
FIRST_READY = {"dagster/priority": "1"}


def build_store_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name=LOAD, **one_day(partitions), group_name="stores", kinds={"postgres"}, op_tags=FIRST_READY,
        automation_condition=late_data_propagates(),
        deps=[SCORED, STANDARDIZED],
        description="The operational PostgreSQL store: the day's scored readings upserted idempotently, "
        "with its quarantine, revisions and estimates of short gaps (estimated_readings, SPEC §3b).",
    )
    def meter_readings(context, s3: S3Resource, operational: OperationalStoreResource) -> dg.MaterializeResult:
        day = partition_day(context)
        with storage_step(context, s3) as (watch, client, bucket):
            staged = Bucket(client, bucket)
            with watch.stage("read"):
                store = operational.store()
                _refuse_empty_over_stored(staged, store, day)
                parts = staging.layout(client, bucket, SCORED, day)
                estimates = read_upstream(context, client, bucket, SCORED, day, "estimates")
            load = DayLoad(day, estimates=estimates, run_id=context.run.run_id, parts=parts,
                           read_part=lambda index: _read_part(context, staged, day, Shard(index, parts)))
            with watch.stage("load"):
                result = _load_changes(staged, store, load, context.log)
        return dg.MaterializeResult(metadata={**_load_metadata(result), **watch.metadata(result.rows)})

    @dg.asset(
        name=LAKE_READINGS, **one_day(partitions), group_name="lake", kinds={"s3", "parquet"},
        automation_condition=late_data_propagates(),
        deps=[SCORED],
        description="Data lake: the day's readings graded A–C, Snappy Parquet under analytics/readings/year=/month=/day=.",
    )
    def lake_readings(context, s3: S3Resource) -> dg.MaterializeResult:
        day = partition_day(context)
        with storage_step(context, s3) as (watch, client, bucket):
            staged = Bucket(client, bucket)
            with watch.stage("read"):
                parts = staging.layout(client, bucket, SCORED, day)
                files = staging.read_frame(client, bucket, RAW, day, "files")
            seen = _PartCounts()

            def graded_part(index: int) -> pl.DataFrame:  # one meter shard's graded readings, counted
                scored = _read(context, staged, day, SCORED, "readings", Shard(index, parts))
                graded = scored.filter(pl.col("quality_grade").is_in(LAKE_GRADES))
                seen.add(scored.height - graded.height, grade_counts(graded))
                return graded

            with watch.stage("write"):
                written = lake.write_lake_day_in_parts(client, bucket, "readings", day, parts, graded_part)
        csv_bytes = int(files.filter(pl.col("dead_letter_reason").is_null())["size"].sum()) if files is not None else 0
        return dg.MaterializeResult(metadata={
            "rows": written.rows,
            "excluded_grade_f": seen.excluded,
            "bytes": written.bytes,
            "raw_csv_bytes": csv_bytes,
            "size_ratio_to_csv": round(written.bytes / csv_bytes, 4) if csv_bytes else 0.0,
            "key": written.key,
            "shards": parts,  # encoded one meter shard at a time into the day's one object
            **grade_metadata_of(seen.grades),
            **watch.metadata(written.rows),
        })

    @dg.asset(
        name=LAKE_METER_DAILY, **one_day(partitions), group_name="lake", kinds={"s3", "parquet"},
        automation_condition=late_data_propagates(),
        deps=[SCORED],
        description="Data lake: one row per meter and day — energy, peak energy, statistics, faults and grade counts; "
        "beside it the day's estimates of short gaps (SPEC §3b) under analytics/estimated/year=/month=/day=.",
    )
    def lake_meter_daily(context, s3: S3Resource) -> dg.MaterializeResult:
        day = partition_day(context)
        with storage_step(context, s3) as (watch, client, bucket):
            staged = Bucket(client, bucket)
            parts = staging.layout(client, bucket, SCORED, day)
            with watch.stage("read_and_aggregate"):
                # Per meter, so per meter shard: a shard's readings at a time, then the day's
                # meters together (a row each).
                daily = pl.concat([_meter_daily_of(context, staged, day, Shard(index, parts)) for index in range(parts)]
                                  ).sort("meter_id")  # in meter order, so its sums below do not depend on the split
            with watch.stage("read"):
                estimates = read_upstream(context, client, bucket, SCORED, day, "estimates")
            with watch.stage("write"):
                # The estimates first: a meter_daily naming estimated slots never precedes them in the lake.
                estimated = lake.write_lake_day(client, bucket, "estimated", day, estimates)
                written = lake.write_lake_day(client, bucket, "meter_daily", day, daily)
        return dg.MaterializeResult(metadata={
            "meters": written.rows,
            "energy_kwh": round(float(daily["energy_kwh"].sum()), 3),
            "peak_kwh": round(float(daily["peak_kwh"].sum()), 3),
            "reliable_meters": int(daily["reliable"].sum()),
            "estimated_slots": estimated.rows,
            "energy_kwh_estimated": round(float(daily["energy_kwh_estimated"].sum()), 3),
            "estimated_key": estimated.key,
            "bytes": written.bytes,
            "key": written.key,
            "shards": parts,
            **watch.metadata(written.rows),
        })

    return [meter_readings, lake_readings, lake_meter_daily]


def _load_metadata(result: LoadResult) -> dict:
    return {
        "readings_copied": result.readings_copied,  # sent to PostgreSQL: only what changed since the last load
        "shards": result.parts,  # sent one meter shard at a time, each compared with its own digest
        "rows": result.rows,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "deleted": result.deleted,  # each kept in removed_readings
        "rejected_rows": result.rejected_rows,
        "revision_rows": result.revision_rows,
        "estimate_rows": result.estimate_rows,  # SPEC §3b: estimated_readings of the day after the load
        "estimates_inserted": result.estimates_inserted,
        "estimates_updated": result.estimates_updated,
        "estimates_withdrawn": result.estimates_withdrawn,
        "seconds_stage_copy": result.stage_seconds,
        "seconds_merge": result.merge_seconds,
    }


class _PartCounts:
    """The lake readings' counts, added up part by part as the parts are encoded."""

    def __init__(self) -> None:
        self.excluded = 0
        self.grades: dict[str, float] = dict.fromkeys(GRADE_COUNTS, 0)

    def add(self, excluded: int, grades: dict[str, float]) -> None:
        self.excluded += excluded
        self.grades = {name: self.grades[name] + grades[name] for name in GRADE_COUNTS}


def _read(context, staged: Bucket, day: date, asset: str, name: str, shard: Shard) -> pl.DataFrame:
    return read_shard_upstream(context, staged.client, staged.name, asset, day, name, shard)


def _meter_daily_of(context, staged: Bucket, day: date, shard: Shard) -> pl.DataFrame:
    """meter_daily of one meter shard (every column of it is per meter)."""
    def read(name: str) -> pl.DataFrame:
        return _read(context, staged, day, SCORED, name, shard)
    return meter_daily(read("readings"), read("meters"), day, read("estimates"))


def _read_part(context, staged: Bucket, day: date, shard: Shard) -> LoadPart:
    """One meter shard of the day's load: its scored readings, quarantine rows and revisions."""
    return LoadPart(*(_read(context, staged, day, asset, name, shard) for asset, name in (
        (SCORED, "readings"), (STANDARDIZED, "rejected"), (STANDARDIZED, "revisions"))))


def _load_changes(staged: Bucket, store: OperationalStore, load: DayLoad, log) -> LoadResult:
    """Load the day, sending only the readings that changed since its last load when that load's
    digest is at hand (storage/operational/changed_rows.py), one digest per part (meter shard);
    then keep this load's digest."""
    day = load.day
    previous_name = fetch_previous_load_name(store, day)
    previous = _previous_load(staged, day, previous_name, load.parts) if previous_name is not None else None
    name = uuid.uuid4().hex

    def keep(part: int, digest: pl.DataFrame) -> None:  # uploaded while PostgreSQL loads
        staged.write_frame(LOAD, day, _digest(name, part, load.parts), digest)

    try:
        result = load_partition(store, dataclasses.replace(load, previous=previous, digest_name=name, keep_digest=keep))
    except BaseException:
        _forget_digest(staged, day, name, log)  # named by no load: the previous one stays current
        raise
    if result.digest_name != name:  # the readings had not changed: the previous digest stays current
        staged.delete_frames_starting(LOAD, day, _digest(name))
    elif previous_name is not None:
        staged.delete_frames_starting(LOAD, day, _digest(previous_name))
    return result


def _previous_load(staged: Bucket, day: date, name: str, parts: int) -> PreviousLoad | None:
    """The previous load's digest, kept in as many parts as this load has; None when one of them
    is not in staging (the load then compares in PostgreSQL). Each part is read when its turn
    comes, so that the process holds one part's digest, not the day's."""
    names = [_digest(name, part, parts) for part in range(parts)]
    if not all(staged.frame_exists(LOAD, day, part_name) for part_name in names):
        return None
    return PreviousLoad(name, parts=parts, read_part=lambda part: _required(staged.read_frame(LOAD, day, names[part]),
                                                                           names[part]))


def _required(frame: pl.DataFrame | None, name: str) -> pl.DataFrame:
    if frame is None:
        raise RuntimeError(f"the digest {name} went from staging during the load; the load is rolled back "
                           "and its retry compares in PostgreSQL")
    return frame


def _digest(name: str, part: int | None = None, parts: int = 1) -> str:
    """A load's digest (`part` None: the start every part's name shares); a one-part load's is one frame."""
    if part is None or parts == 1:
        return f"digest-{name}"
    return f"digest-{name}-part-{part:04d}-of-{parts:04d}"


def _forget_digest(staged: Bucket, day: date, name: str, log) -> None:
    """Remove the digest of a load that failed. The store failing is likely why the load failed:
    then the digest stays as litter that no load names (never read), and the log says where."""
    try:
        staged.delete_frames_starting(LOAD, day, _digest(name))
    except Exception as error:
        log.warning(f"the digest of this failed load could not be removed ({type(error).__name__}); "
                    f"{staging.staging_key(LOAD, day, _digest(name))} is named by no load and may be deleted")


def _refuse_empty_over_stored(staged: Bucket, store: OperationalStore, day: date) -> None:
    """A day never scored reads as empty; loading that over stored readings would delete them
    (staging expired, say). Stop and say what to do instead (SPEC §5: never remove silently)."""
    if staged.read_frame(SCORED, day, "meters") is not None:
        return
    stored = count_day_readings(store.url, day)
    if stored:
        raise dg.Failure(
            f"scored_readings {day} is not in staging, but PostgreSQL holds {stored} readings of the day; "
            f"materialize raw_readings → scored_readings for {day} first (loading an empty day would delete them)"
        )
