"""Daily schedules: the 02:00 lake rollup of the previous day, and the retention (SPEC §6)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

LAKE_ROLLUP_CRON = "0 2 * * *"
RETENTION_CRON = "30 2 * * *"


def previous_day_partition(context: dg.ScheduleEvaluationContext) -> str:
    """The partition key of the day before the tick's date, in the schedule's time zone."""
    return (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()


def build_schedules(lake_job, retention_job, timezone: str, retention_days: int):
    @dg.schedule(
        name="lake_rollup_schedule", cron_schedule=LAKE_ROLLUP_CRON, job=lake_job,
        execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="At 02:00 the lake assets of the previous day are rewritten from its scored readings.",
    )
    def lake_rollup_schedule(context: dg.ScheduleEvaluationContext):
        day = previous_day_partition(context)
        return dg.RunRequest(run_key=f"lake-{day}", partition_key=day)

    @dg.schedule(
        name="retention_schedule", cron_schedule=RETENTION_CRON, job=retention_job,
        execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Drops operational day partitions older than {retention_days} days.",
    )
    def retention_schedule(context: dg.ScheduleEvaluationContext):
        today = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(
            run_key=f"retention-{today}",
            run_config={"ops": {"drop_expired_partitions": {"config": {"today": today, "retention_days": retention_days}}}},
        )

    return [lake_rollup_schedule, retention_schedule]
