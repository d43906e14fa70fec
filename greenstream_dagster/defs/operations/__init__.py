"""The operations domain: the jobs, the 02:00 lake rollup and the retention, the late-data
cascade, dead letters and their replay."""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.defs.operations.automation import build_late_data_sensor
from greenstream_dagster.defs.operations.dead_letters import (
    build_dead_letter_sensor,
    build_replay_sensors,
    replay_dead_letters,
)
from greenstream_dagster.defs.operations.jobs import retention_job
from greenstream_dagster.defs.operations.schedules import build_schedules
from greenstream_dagster.settings import Settings


def build_defs(settings: Settings, ingest_job, lake_job) -> dg.Definitions:
    return dg.Definitions(
        jobs=[ingest_job, lake_job, retention_job, replay_dead_letters],
        sensors=[build_dead_letter_sensor(), *build_replay_sensors(ingest_job),
                 build_late_data_sensor(settings.sensor_interval_seconds)],
        schedules=build_schedules(lake_job, retention_job, settings.schedule_timezone, settings.retention_days),
    )
