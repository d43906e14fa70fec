"""Dead letters of failed partitions and their replay (SPEC §6).

When a run of a partition fails after its steps' retries, `dead_letter_sensor`
records the partition's inputs (day, failed assets, error) in PostgreSQL
`dead_letter_files`. Once the fault is fixed, the `replay_dead_letters` job
re-drives every open partition through the ingest job and closes the dead
letters whose replay succeeded. Loads are idempotent, so a replay never
doubles anything.
"""


from datetime import date

import dagster as dg

from greenstream_dagster.defs.resources import OperationalStoreResource
from greenstream_dagster.defs.run_queue import day_of_run
from greenstream_dagster.storage.operational.dead_letters import (
    list_open_dead_letters,
    mark_replayed,
    record_dead_letter_partition,
)

INGEST_JOB = "ingest_partition_job"
REASON_LIMIT = 2000


def failed_asset_keys(context: dg.RunFailureSensorContext) -> list[str]:
    keys = []
    for event in context.get_step_failure_events():
        step = event.step_key or "run"
        keys.append(step)
    return sorted(set(keys)) or ["run"]


def build_dead_letter_sensor(monitored_jobs) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="dead_letter_sensor", monitored_jobs=monitored_jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
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


def _ingest_job():
    """The ingest job of this code location, built from the current settings like the resources."""
    from greenstream_dagster.definitions import build_definitions  # the definitions import this module
    from greenstream_dagster.settings import load_settings

    return build_definitions(load_settings()).resolve_job_def(INGEST_JOB)


@dg.op(description="Re-drive every open partition dead letter through the ingest job; close the ones that succeed.")
def replay_open_dead_letters(context: dg.OpExecutionContext, operational: OperationalStoreResource) -> None:
    url = operational.url()
    open_letters = list_open_dead_letters(url, kind="partition")
    by_day: dict[date, list[int]] = {}
    for letter in open_letters:
        by_day.setdefault(letter.partition_date, []).append(letter.dead_letter_id)
    job = _ingest_job()
    failed = []
    for day, ids in sorted(by_day.items()):
        result = job.execute_in_process(
            partition_key=day.isoformat(), instance=context.instance, raise_on_error=False,
            tags={"greenstream/replay_of": ",".join(map(str, ids))},
        )
        if result.success:
            closed = mark_replayed(url, day, ids, replay_run_id=result.run_id)
            context.log.info(f"replayed {day}: run {result.run_id}, {closed} dead letters closed")
        else:
            failed.append(day.isoformat())
            context.log.error(f"replay of {day} failed again in run {result.run_id}; its dead letters stay open")
    if failed:
        raise dg.Failure(f"replay failed for partitions {', '.join(failed)}; fix the fault and replay again")
    context.log.info(f"{len(by_day)} partitions replayed")


@dg.job(name="replay_dead_letters", description="Replays the partitions in the dead letter store.")
def replay_dead_letters():
    replay_open_dead_letters()
