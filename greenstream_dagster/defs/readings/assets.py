"""The partitioned asset chain raw → standardized → scored (SPEC §6); raw_readings in raw.py.

Each asset reads its inputs from staging Parquet in S3, applies the pure rules
and writes its own frames back, so any run on any machine can pick up where
another left off. Steps that touch storage retry with the spec's backoff.
"""


import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import dagster as dg
import polars as pl

from greenstream_dagster.asset_names import RAW, SCORED, STANDARDIZED
from greenstream_dagster.defs.metadata import GRADE_COUNTS, grade_counts, grade_metadata_of, quarantine_metadata
from greenstream_dagster.defs.partitions import partition_day
from greenstream_dagster.defs.pending_days import wait_for_pending_days
from greenstream_dagster.defs.policies import late_data_propagates, one_day, storage_step, with_its_asset
from greenstream_dagster.defs.readings.raw import build_raw_asset
from greenstream_dagster.defs.readings.sharded import ShardedAsset, build_sharded_asset, redone, summed, timing
from greenstream_dagster.defs.resources import RulesResource, S3Resource
from greenstream_dagster.rules.empty_day import empty_day_frames
from greenstream_dagster.rules.estimation import EstimationSummary, summarize_estimation
from greenstream_dagster.rules.fault_window import fault_window
from greenstream_dagster.rules.meter_day_stats import METER_DAY_STATS_COLUMNS
from greenstream_dagster.rules.meter_shards import Shard
from greenstream_dagster.rules.reading_order import duplicate_keys
from greenstream_dagster.rules.schemas import READING_KEY, ScoredSchema, StandardizedSchema
from greenstream_dagster.storage import staging
from greenstream_dagster.storage.delta_staging import (
    score_day,
    stage_scored,
    stage_standardized,
    standardize_day,
    window_versions,
)

ESTIMATION = "estimation"  # the per-partition check of SPEC §3b


def read_upstream(context, client, bucket: str, asset: str, day: date, name: str) -> pl.DataFrame:
    """An upstream asset's staged frame of the day; an empty day when that day was never materialized.

    Every partition can be materialized (SPEC §6): a day without landing files has no
    upstream frames, and a backfill's time-window mapping fans scored_readings out to
    days (today, say) whose upstream is not materialized yet. Such a day is read as
    empty, with a warning: its landing files, if any, are processed by the day's own
    ingest run, and the late-data cascade re-scores what depends on them.
    """
    return _or_empty_day(context, staging.read_frame(client, bucket, asset, day, name), asset, day, name)


def read_shard_upstream(context, client, bucket: str, asset: str, day: date, name: str, shard: Shard) -> pl.DataFrame:
    """The shard's part of an upstream day frame (staging.read_shard_frame); read as empty like read_upstream."""
    return _or_empty_day(context, staging.read_shard_frame(client, bucket, asset, day, name, shard), asset, day, name)


def _or_empty_day(context, frame: pl.DataFrame | None, asset: str, day: date, name: str) -> pl.DataFrame:
    if frame is None:
        context.log.warning(f"{asset} {day} has not been materialized: read as an empty day")
        return empty_day_frames(day)[(asset, name)]
    return frame


def _schema_check(schema, frame: pl.DataFrame, asset: str, name: str) -> dg.AssetCheckResult:
    """pandera.polars validation of the whole frame, and one reading per interval key;
    failures block downstream assets."""
    import pandera.errors

    failures = []
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        failures.append(str(errors.failure_cases.head(20)))
    duplicates = duplicate_keys(frame, READING_KEY)
    if duplicates.height:
        failures.append(f"{duplicates.height} interval key(s) on more than one row, e.g. {duplicates.head(5).rows()}")
    return dg.AssetCheckResult(
        asset_key=asset, check_name=name, passed=not failures,
        metadata={"rows": frame.height, **({"failures": "\n".join(failures)} if failures else {})},
    )


def _stage_checked(client, bucket: str, asset: str, day: date, frames: dict[str, pl.DataFrame],
                   changes: dict[str, staging.Change | None], readings: pl.DataFrame, schema,
                   check_name: str) -> dg.AssetCheckResult:
    """Stage the asset's frames while its readings are validated: both run mostly outside
    Python's lock (Parquet encoding, the upload, Polars' evaluation of the checks), so on
    two cores they overlap instead of adding up."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        check = pool.submit(_schema_check, schema, readings, asset, check_name)
        if frames:
            staging.write_frames(client, bucket, asset, day, frames, changes)
        return check.result()


def build_reading_assets(partitions: dg.PartitionsDefinition, window_days: int = 7) -> list[dg.AssetsDefinition]:
    return [build_raw_asset(partitions), build_sharded_asset(_standardized(partitions), one_day(partitions)),
            build_sharded_asset(_scored(partitions, window_days), one_day(partitions))]


def _standardized(partitions: dg.PartitionsDefinition) -> ShardedAsset:
    def shard_step(context, shard: Shard, s3: S3Resource, rules: RulesResource) -> dict:
        day = partition_day(context)
        with storage_step(context, s3) as (watch, client, bucket):
            with watch.stage("read"):
                rows = read_shard_upstream(context, client, bucket, RAW, day, "rows", shard)
            with watch.stage("standardize"):
                redone = standardize_day(client, bucket, day, rows, rules.config(), shard)
                result = redone.result
            with watch.stage("write_and_check"):
                check = stage_standardized(client, bucket, day, redone, _shard_writer(
                    client, bucket, STANDARDIZED, day, shard, StandardizedSchema, "standardized_schema"), shard)
        readings, errors = result.readings, result.readings["validation_errors"]
        return {
            "shard": [shard.index, shard.count], "rows": rows.height, "meters": result.meter_stats.height,
            "touched_meters": redone.touched_meters if redone.touched_meters is not None or redone.unchanged else None,
            "readings": readings.height, "quarantined": result.rejected.height, "revisions": result.revisions.height,
            "revised_readings": int(readings["revised"].sum()),
            "invalid_value": int(errors.list.contains("INVALID_VALUE").sum()),
            "unit_not_allowed": int(errors.list.contains("UNIT_NOT_ALLOWED").sum()),
            "out_of_range": int(readings["out_of_range"].sum()),
            **quarantine_metadata(result.rejected), **_check_summary(check), "timing": watch.metadata(rows.height),
        }

    def day_result(summaries: list[dict]) -> tuple[dict, list]:
        counts = ["rows", "readings", "quarantined", "revisions", "revised_readings", "invalid_value",
                  "unit_not_allowed", "out_of_range", *(k for k in summaries[0] if k.startswith("quarantined_"))]
        day = summed(summaries, counts)
        return ({**day, **redone(summaries), **timing([s["timing"] for s in summaries], day["rows"]), "shards": len(summaries)},
                [_day_check(summaries, STANDARDIZED, "standardized_schema")])

    return ShardedAsset(
        name=STANDARDIZED, verb="standardize", upstream=dg.AssetIn(RAW, dagster_type=dg.Nothing),
        shard_step=shard_step, day_result=day_result, kinds={"polars"},
        check_specs=[dg.AssetCheckSpec("standardized_schema", asset=STANDARDIZED, blocking=True, partitions_def=partitions)],
        description="One winning reading per (meter_id, reading_ts), in kW, enriched; the quarantine and revisions "
        "beside it. Computed per meter shard.",
    )


def _scored(partitions: dg.PartitionsDefinition, window_days: int) -> ShardedAsset:
    def shard_step(context, shard: Shard, s3: S3Resource, rules: RulesResource) -> dict:
        day = partition_day(context)
        config = rules.config()
        window = fault_window(day, config)
        with storage_step(context, s3) as (watch, client, bucket):
            with watch.stage("read"):
                history_days = [window.first_day + timedelta(days=k) for k in range(window.days - 1)]
                versions = window_versions(client, bucket, [*history_days, day], shard)
                readings = read_shard_upstream(context, client, bucket, STANDARDIZED, day, "readings", shard)
                day_stats = read_shard_upstream(context, client, bucket, STANDARDIZED, day, "meter_stats", shard)
                history = {d: staging.read_shard_frame(client, bucket, STANDARDIZED, d, "meter_stats", shard,
                                                       columns=list(METER_DAY_STATS_COLUMNS)) for d in history_days}
                _wait_for_window(context, client, bucket, [d for d, frame in history.items() if frame is None])
                present = [frame for frame in history.values() if frame is not None]
            with watch.stage("score"):
                redone, basis = score_day(client, bucket, day, readings, history, config, versions, shard)
                scored = redone.result
            with watch.stage("write_and_check"):
                check = stage_scored(client, bucket, day, redone, basis, _shard_writer(
                    client, bucket, SCORED, day, shard, ScoredSchema, "scored_schema"), shard)
        meters, estimation = scored.meters, summarize_estimation(scored.estimates, day_stats)
        return {
            "shard": [shard.index, shard.count], "readings": scored.readings.height, "meters": meters.height,
            "touched_meters": redone.touched_meters if redone.touched_meters is not None or redone.unchanged else None,
            "window_days": window.days, "window_days_with_data": len(present) + 1,
            "stuck_meters": int(meters["stuck"].sum()), "spike_readings": int(scored.readings["is_spike"].sum()),
            "gap_meters": int(meters["gap"].sum()), "reliable_meters": int(meters["reliable"].sum()),
            **grade_counts(scored.readings), **dataclasses.asdict(estimation), **_check_summary(check),
            "max_estimate_slots": config.max_estimate_slots, "timing": watch.metadata(scored.readings.height),
        }

    def day_result(summaries: list[dict]) -> tuple[dict, list]:
        counts = ["readings", "meters", "stuck_meters", "spike_readings", "gap_meters", "reliable_meters",
                  *GRADE_COUNTS, "estimated_slots", "meters_with_estimates"]
        day = summed(summaries, counts)
        estimation = EstimationSummary(**summed(summaries, [f.name for f in dataclasses.fields(EstimationSummary)]))
        metadata = {
            "readings": day["readings"], "meters": day["meters"],
            "window_days": summaries[0]["window_days"],
            "window_days_with_data": min(s["window_days_with_data"] for s in summaries),
            **redone(summaries),
            **{k: day[k] for k in ("stuck_meters", "spike_readings", "gap_meters", "reliable_meters")},
            **grade_metadata_of(summed(summaries, list(GRADE_COUNTS))),
            "estimated_slots": day["estimated_slots"], "meters_with_estimates": day["meters_with_estimates"],
            **timing([s["timing"] for s in summaries], day["readings"]), "shards": len(summaries),
        }
        return metadata, [_day_check(summaries, SCORED, "scored_schema"),
                          _estimation_check(estimation, summaries[0]["max_estimate_slots"])]

    return ShardedAsset(
        name=SCORED, verb="score", shard_step=shard_step, day_result=day_result,
        upstream=dg.AssetIn(STANDARDIZED, dagster_type=dg.Nothing, partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-(window_days - 1), allow_nonexistent_upstream_partitions=True)),
        check_specs=[dg.AssetCheckSpec("scored_schema", asset=SCORED, blocking=True, partitions_def=partitions,
                                       automation_condition=with_its_asset()),
                     dg.AssetCheckSpec(ESTIMATION, asset=SCORED, partitions_def=partitions,
                                       description="Short gaps estimated (SPEC §3b): estimated slots, meters with "
                                       "estimates and the share of the meters' slots still missing.")],
        automation_condition=late_data_propagates(), kinds={"polars"},
        description="Every winning reading of the day with its fault flags, quality score and A–F grade; "
        "faults judged over the 7-day window D-6..D. Computed per meter shard.",
    )


def _shard_writer(client, bucket: str, asset: str, day: date, shard: Shard, schema, check_name: str):
    """Stages a shard's frames under its own names while its readings are validated."""
    def write(frames, changes, readings):
        named = {staging.shard_frame(name, shard): frame for name, frame in frames.items()}
        changed = {staging.shard_frame(name, shard): change for name, change in changes.items()}
        return _stage_checked(client, bucket, asset, day, named, changed, readings, schema, check_name)
    return write


def _check_summary(check: dg.AssetCheckResult) -> dict:
    return {"check_passed": check.passed, "check_rows": check.metadata["rows"].value,
            "check_failures": check.metadata["failures"].value if "failures" in check.metadata else None}


def _day_check(summaries: list[dict], asset: str, name: str) -> dg.AssetCheckResult:
    """The schema check of the whole day: it passes when every shard's frames passed (an interval
    key never spans two shards, so one reading per key holds for the day as it does per shard)."""
    failures = [f"{s['shard'][0]} of {s['shard'][1]}: {s['check_failures']}" if len(summaries) > 1 else s["check_failures"]
                for s in summaries if not s["check_passed"]]
    return dg.AssetCheckResult(
        asset_key=asset, check_name=name, passed=not failures,
        metadata={"rows": sum(s["check_rows"] for s in summaries), **({"failures": "\n".join(failures)} if failures else {})},
    )


def _estimation_check(summary, max_estimate_slots: int) -> dg.AssetCheckResult:
    """Informational (it always passes): estimates are flagged apart, never a fault; the numbers plot over days."""
    state = "off" if max_estimate_slots == 0 else f"runs of at most {max_estimate_slots} slots"
    return dg.AssetCheckResult(
        asset_key=SCORED, check_name=ESTIMATION, passed=True,
        description=f"{summary.estimated_slots} slots of {summary.meters_with_estimates} meters estimated "
        f"({state}); {summary.missing_slot_share:.2%} of the meters' slots still missing",
        metadata={
            "estimated_slots": dg.MetadataValue.int(summary.estimated_slots),
            "meters_with_estimates": dg.MetadataValue.int(summary.meters_with_estimates),
            "meters": dg.MetadataValue.int(summary.meters),
            "missing_slots": dg.MetadataValue.int(summary.missing_slots),
            "missing_slot_share": dg.MetadataValue.float(round(summary.missing_slot_share, 6)),
            "max_estimate_slots": dg.MetadataValue.int(max_estimate_slots),
        },
    )


WINDOW_WAIT_SECONDS = 10
WINDOW_WAIT_RETRIES = 12


def _wait_for_window(context, client, bucket: str, missing_days: list[date]) -> None:
    """Window days still being standardized read as a communication gap: wait for them a while."""
    wait_for_pending_days(
        context, client, bucket, missing_days, waiting_for="standardized readings",
        going_on="scoring without them; this day is re-scored automatically when they are",
        seconds=WINDOW_WAIT_SECONDS, retries=WINDOW_WAIT_RETRIES,
    )
