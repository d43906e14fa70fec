"""Dead letters of failed partitions and their replay (SPEC §6).

When a run of a partition fails after its steps' retries, `dead_letter_sensor`
records the partition's inputs (day, failed steps, error) in PostgreSQL
`dead_letter_files`.

A replay goes through the run queue like every other run, so it obeys the
one-run-per-day limit of dagster.yaml (SPEC §6: runs of one day never
overlap, whatever launched them). It takes three small parts, because an op
cannot queue runs with public APIs but a sensor can:

1. `replay_dead_letters` (the job a person launches once the fault is fixed)
   is the request: it lists the open partition dead letters it asks to replay.
2. `replay_dead_letters_sensor` sees each successful request once (its cursor)
   and asks for one run of the ingest job per open day; the daemon submits
   them to the queued run coordinator.
3. `replay_closing_sensor` closes a day's dead letters when its replay run
   succeeds. A replay that fails again is recorded by `dead_letter_sensor`
   (the open dead letter counts another attempt) and waits for the next request.

Loads are idempotent, so a replay never doubles anything.
"""


from datetime import date, datetime, timezone

import dagster as dg

from greenstream_dagster.defs.resources import OperationalStoreResource
from greenstream_dagster.instance.run_queue import day_of_run
from greenstream_dagster.storage.operational.dead_letters import (
    list_open_dead_letters,
    mark_replayed,
    record_dead_letter_partition,
)

REASON_LIMIT = 2000
REPLAY_JOB = "replay_dead_letters"
REPLAY_OF_TAG = "greenstream/replay_of"  # the dead letter ids a replay run stands for
REPLAY_REQUEST_TAG = "greenstream/replay_request"  # the run of replay_dead_letters that asked
# Each evaluation is one indexed query; a replay should not wait half a minute per hop.
REPLAY_SENSOR_INTERVAL_SECONDS = 15


def failed_asset_keys(context: dg.RunFailureSensorContext) -> list[str]:
    keys = []
    for event in context.get_step_failure_events():
        step = event.step_key or "run"
        keys.append(step)
    return sorted(set(keys)) or ["run"]


def build_dead_letter_sensor() -> dg.SensorDefinition:
    """Watches every job of the code location: a day fails in the sensor's ingest job, the 02:00
    rollup, a UI backfill or a cascade run (the last two run Dagster's implicit asset job)."""

    @dg.run_failure_sensor(
        name="dead_letter_sensor",
        minimum_interval_seconds=REPLAY_SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records a partition whose run failed after its retries in the dead letter store.",
    )
    def dead_letter_sensor(context: dg.RunFailureSensorContext, operational: OperationalStoreResource):
        partition = day_of_run(context.dagster_run.tags)  # sensor, backfill or automation run alike
        if partition is None:
            return dg.SkipReason(f"run {context.dagster_run.run_id} has no partition")
        reason = (context.failure_event.message or "run failed")[:REASON_LIMIT]
        for step in failed_asset_keys(context):
            record_dead_letter_partition(operational.url(), date.fromisoformat(partition), step, reason,
                                         run_id=context.dagster_run.run_id)
        context.log.info(f"dead letter: partition {partition} of run {context.dagster_run.run_id}")
        return None

    return dead_letter_sensor


def open_partitions(database_url: str) -> dict[date, list[int]]:
    """{day: open partition dead letter ids}, oldest day first."""
    by_day: dict[date, list[int]] = {}
    for letter in list_open_dead_letters(database_url, kind="partition"):
        by_day.setdefault(letter.partition_date, []).append(letter.dead_letter_id)
    return by_day


@dg.op(description="Ask for a replay of every open partition dead letter; replay_dead_letters_sensor queues the runs.")
def request_replay(context: dg.OpExecutionContext, operational: OperationalStoreResource) -> None:
    by_day = open_partitions(operational.url())
    if not by_day:
        context.log.info("no open partition dead letters: nothing to replay")
        return
    days = ", ".join(day.isoformat() for day in by_day)
    context.log.info(f"replay requested for {len(by_day)} partition days ({days}); "
                     "replay_dead_letters_sensor queues one ingest run per day")


@dg.job(name=REPLAY_JOB, description="Replays the partitions in the dead letter store, through the run queue.")
def replay_dead_letters():
    request_replay()


def build_replay_sensors(ingest_job) -> list[dg.SensorDefinition]:
    """The sensors that turn a replay request into queued runs of `ingest_job` and close the
    dead letters of the days whose replay succeeded."""

    @dg.sensor(
        name="replay_dead_letters_sensor", job=ingest_job,
        minimum_interval_seconds=REPLAY_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"For each successful run of {REPLAY_JOB}: one queued ingest run per day with open dead letters.",
    )
    def replay_dead_letters_sensor(context: dg.SensorEvaluationContext, operational: OperationalStoreResource):
        since = float(context.cursor) if context.cursor else 0.0
        requests = context.instance.get_run_records(
            dg.RunsFilter(job_name=REPLAY_JOB, statuses=[dg.DagsterRunStatus.SUCCESS],
                          created_after=datetime.fromtimestamp(since, timezone.utc)),
            order_by="create_timestamp", ascending=True,
        )
        requests = [r for r in requests if r.create_timestamp.timestamp() > since]
        if not requests:
            return dg.SkipReason(f"no new run of {REPLAY_JOB}")
        latest = requests[-1]
        by_day = open_partitions(operational.url())
        run_requests = [
            dg.RunRequest(
                run_key=f"replay-{latest.dagster_run.run_id}-{day.isoformat()}",
                partition_key=day.isoformat(),
                tags={REPLAY_OF_TAG: ",".join(map(str, ids)), REPLAY_REQUEST_TAG: latest.dagster_run.run_id},
            )
            for day, ids in sorted(by_day.items())
        ]
        return dg.SensorResult(run_requests=run_requests, cursor=str(latest.create_timestamp.timestamp()))

    @dg.run_status_sensor(
        name="replay_closing_sensor", run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[ingest_job],
        minimum_interval_seconds=REPLAY_SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description="Closes the dead letters of a day whose replay run succeeded.",
    )
    def replay_closing_sensor(context: dg.RunStatusSensorContext, operational: OperationalStoreResource):
        run = context.dagster_run
        replay_of = run.tags.get(REPLAY_OF_TAG)
        partition = run.tags.get("dagster/partition")
        if not replay_of or partition is None:
            return dg.SkipReason(f"run {run.run_id} is not a replay")
        ids = [int(i) for i in replay_of.split(",")]
        closed = mark_replayed(operational.url(), date.fromisoformat(partition), ids, replay_run_id=run.run_id)
        context.log.info(f"replayed {partition}: run {run.run_id}, {closed} dead letters closed")
        return None

    return [replay_dead_letters_sensor, replay_closing_sensor]
