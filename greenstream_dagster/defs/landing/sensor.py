"""`raw_file_sensor` (SPEC §6): one run per partition day whose landing content changed.

Decisions live in `rules.landing_scan` and listing in `storage.landing_folders`;
this module only wires them to Dagster. It needs the resource `s3`, any object with
`client()` returning a boto3 S3 client and `bucket` naming the landing bucket.

The evaluation day is today in UTC, clipped to the job's last partition: files in a
day that has no partition yet (a `DailyPartitionsDefinition` without
`end_offset=1` stops at yesterday) are reported and left out of the cursor, so
they are picked up once the partition exists, instead of failing the tick.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

from dagster import (
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    ResourceParam,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from greenstream_dagster.asset_names import RAW
from greenstream_dagster.defs.operations.jobs import INGEST_JOB
from greenstream_dagster.instance.run_queue import day_of_run
from greenstream_dagster.rules.landing_scan import (
    LookbackWindow,
    PartitionRequest,
    ScanPlan,
    hold_days,
    lookback_window,
    plan_scan,
    spacing_left,
)
from greenstream_dagster.storage.landing_folders import list_landing_window

SENSOR_NAME = "raw_file_sensor"
RAW_ASSET = RAW  # the asset that lists the landing zone


class LandingBucket(Protocol):
    """What the sensor needs from the `s3` resource."""

    bucket: str

    def client(self):
        """A boto3 S3 client for the landing bucket's endpoint."""


def build_raw_file_sensor(
    job,
    lookback_days: int,
    partitions_start: date,
    minimum_interval_seconds: int = 30,
    day_run_spacing_seconds: int = 0,
) -> SensorDefinition:
    """The landing-zone sensor targeting `job` (daily-partitioned, UTC).

    `day_run_spacing_seconds`: a day's next ingest run waits six times its last
    run's length, or twice the longest recent ingest run of any day if longer, after
    that run was created, at most this long. Files landing all
    day would otherwise start a run of the whole day every tick, one behind the
    other; spaced, each run takes everything that landed meanwhile, and a small
    fleet's short runs follow each other quickly. The change is kept unseen in the
    cursor meanwhile, so nothing is missed.
    """
    lookback_window(partitions_start, lookback_days, partitions_start)  # bad settings fail at load

    @sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"New or changed CSV files under raw-data/YYYY-MM-DD/ in the last {lookback_days} days: "
            "one run per partition day whose set of ETags changed."
        ),
    )
    def raw_file_sensor(context: SensorEvaluationContext, s3: ResourceParam[LandingBucket]) -> SensorResult:
        window = lookback_window(_evaluation_day(context, job), lookback_days, partitions_start)
        started = time.monotonic()
        listing = list_landing_window(s3.client(), s3.bucket, window)
        plan = plan_scan(context.cursor, listing.days, listing.ignored, window)
        context.log.info(
            f"{SENSOR_NAME} {window.first.isoformat()}..{window.last.isoformat()} "
            f"in {time.monotonic() - started:.1f} s: {plan.summary()}"
        )
        queued = queued_ingest_days(context.instance) if plan.requests else set()
        recent = recently_run_days(context.instance, day_run_spacing_seconds) if plan.requests else {}
        held = sorted({r.partition_key for r in plan.requests} & set(recent) - queued)
        requests = [_run_request(r) for r in plan.requests if r.partition_key not in queued | set(held)]
        covered = sorted({r.partition_key for r in plan.requests} & queued)
        if covered:
            context.log.info(f"{len(covered)} day(s) already have a queued run, which reads everything "
                             f"present when it starts: {', '.join(covered[:5])}")
        if held:
            context.log.info(f"{len(held)} day(s) ran too recently (six times their last run's length or twice "
                             f"the fleet's longest recent run, at most "
                             f"GREENSTREAM_DAY_RUN_SPACING_SECONDS = {day_run_spacing_seconds} s); "
                             f"their next run takes what landed meanwhile: "
                             + ", ".join(f"{d} in {recent[d]:.0f} s" for d in held[:5]))
        cursor = hold_days(plan.cursor, context.cursor, {date.fromisoformat(d) for d in held}) if held else plan.cursor
        return SensorResult(
            run_requests=requests,
            cursor=cursor,
            skip_reason=None if requests else _skip_reason(plan, window, covered, held),
        )

    return raw_file_sensor


def _evaluation_day(context: SensorEvaluationContext, job) -> date:
    """Today (UTC), or the job's last partition day if that is earlier."""
    today = datetime.now(timezone.utc).date()
    partitions_def = getattr(job, "partitions_def", None)
    if partitions_def is None and context.repository_def is not None:
        # An asset job infers its partitions from its assets: ask the resolved job.
        partitions_def = context.repository_def.get_job(job.name).partitions_def
    last_key = partitions_def.get_last_partition_key() if partitions_def is not None else None
    if last_key is None:
        return today
    return min(today, date.fromisoformat(last_key[:10]))


def _run_request(request: PartitionRequest) -> RunRequest:
    return RunRequest(
        partition_key=request.partition_key,
        run_key=request.run_key,
        tags={
            "greenstream/landing_objects": str(request.objects),
            "greenstream/landing_bytes": str(request.total_bytes),
            "greenstream/landing_digest": request.digest,
        },
    )


def queued_ingest_days(instance) -> set[str]:
    """Days with a run that reads the landing zone and has not started yet.

    A new file for such a day needs no run of its own: raw_readings lists the date folder
    when it runs, so the queued run takes everything present by then. This keeps at most
    one queued ingest run per day however fast files arrive (a run that has started may
    have listed already, so it does not count).
    """
    records = instance.get_run_records(filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED,
                                                                     DagsterRunStatus.NOT_STARTED]))
    return {
        day_of_run(r.dagster_run.tags)
        for r in records
        if reads_landing(r.dagster_run)
    } - {None}


def _skip_reason(plan: ScanPlan, window: LookbackWindow, covered: list[str] = (), held: list[str] = ()) -> str:
    report = plan.report
    return (
        f"No new content in {window.first.isoformat()}..{window.last.isoformat()}: "
        f"{len(report.unchanged_days)} day(s) already seen, {len(report.ignored)} key(s) ignored"
        + (f", {len(covered)} day(s) covered by a queued run" if covered else "")
        + (f", {len(held)} day(s) waiting for the run spacing" if held else "")
    )


def reads_landing(run) -> bool:
    """Whether a run materializes raw_readings, i.e. lists the landing zone. A run of the
    ingest job records no asset selection (it runs all of the job's assets); a backfill's
    or the UI's run of the asset job names its assets."""
    return run.job_name == INGEST_JOB or AssetKey(RAW_ASSET) in (run.asset_selection or ())


def recently_run_days(instance, spacing_seconds: int) -> dict[str, float]:
    """Days whose latest ingest run is too recent for the next one → seconds left (see
    landing_scan.spacing_left: six times its length, or twice the fleet's longest recent
    ingest run, at most `spacing_seconds`)."""
    if spacing_seconds <= 0:
        return {}
    now = datetime.now(timezone.utc)
    records = instance.get_run_records(filters=RunsFilter(created_after=now - timedelta(seconds=spacing_seconds)))
    latest: dict[str, object] = {}
    for record in records:
        day = day_of_run(record.dagster_run.tags)
        if day is None or not reads_landing(record.dagster_run):
            continue
        if day not in latest or record.create_timestamp > latest[day].create_timestamp:
            latest[day] = record
    fleet_run = longest_recent_ingest_run(instance) if latest else 0.0
    left = {day: spacing_left(now.timestamp(), r.create_timestamp.timestamp(), r.start_time, r.end_time,
                              spacing_seconds, fleet_run) for day, r in latest.items()}
    return {day: seconds for day, seconds in left.items() if seconds > 0}


RECENT_INGEST_RUNS = 20


def longest_recent_ingest_run(instance) -> float:
    """Seconds the longest of the last RECENT_INGEST_RUNS successful ingest runs (any day) took:
    about what a full day of this fleet costs. A slow run (retries during an outage, say) drops
    out of it after twenty more."""
    records = instance.get_run_records(filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS]),
                                       limit=3 * RECENT_INGEST_RUNS)
    lengths = [r.end_time - r.start_time for r in records
               if reads_landing(r.dagster_run) and r.start_time is not None and r.end_time is not None]
    return max(lengths[:RECENT_INGEST_RUNS], default=0.0)
