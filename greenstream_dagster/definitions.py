"""The code location (`dagster … -m greenstream_dagster.definitions`): it only assembles.

Settings are read and validated here, at load, and the configured services
checked (defs/code_location_start.py says in which processes), so bad
configuration stops the code location with one line naming the setting.
"""

from __future__ import annotations

import gc

import dagster as dg

from greenstream_dagster.defs.automation import build_late_data_sensor
from greenstream_dagster.defs.code_location_start import settings_at_load
from greenstream_dagster.defs.dead_letters import build_dead_letter_sensor, build_replay_sensors, replay_dead_letters
from greenstream_dagster.defs.fault_checks import build_fault_checks
from greenstream_dagster.defs.fleet_assets import build_fleet_assets
from greenstream_dagster.defs.jobs import build_jobs, retention_job
from greenstream_dagster.defs.landing_freshness import build_landing_freshness
from greenstream_dagster.defs.partitions import daily_partitions
from greenstream_dagster.defs.reading_assets import build_reading_assets
from greenstream_dagster.defs.resources import OperationalStoreResource, RulesResource, S3Resource
from greenstream_dagster.defs.schedules import build_schedules
from greenstream_dagster.defs.sensors import build_raw_file_sensor
from greenstream_dagster.defs.store_assets import build_store_assets
from greenstream_dagster.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings.partitions_start)
    ingest_job, lake_job = build_jobs()
    landing, freshness_checks, observe_job, observe_schedule, freshness_sensor = build_landing_freshness(
        settings.freshness_hours)
    return dg.Definitions(
        assets=[*build_reading_assets(partitions, settings.rules.window_days), *build_store_assets(partitions),
                *build_fleet_assets(partitions, settings.rules.silent_lookback_days), *landing],
        asset_checks=[*build_fault_checks(partitions), *freshness_checks],
        jobs=[ingest_job, lake_job, retention_job, replay_dead_letters, observe_job],
        sensors=[
            build_raw_file_sensor(ingest_job, settings.lookback_days, settings.partitions_start,
                                  settings.sensor_interval_seconds, settings.day_run_spacing_seconds),
            build_dead_letter_sensor(),
            *build_replay_sensors(ingest_job),
            build_late_data_sensor(settings.sensor_interval_seconds),
            freshness_sensor,
        ],
        schedules=[*build_schedules(lake_job, retention_job, settings.schedule_timezone, settings.retention_days),
                   observe_schedule],
        # Every step of a run in the run's own process: a day is one chain of steps that
        # hand over through staging in S3, so a process per step (Dagster's default) only
        # adds an interpreter start and the imports of Dagster and Polars to every step.
        executor=dg.in_process_executor,
        resources={
            "s3": S3Resource(bucket=settings.bucket),
            "operational": OperationalStoreResource(),
            "rules": RulesResource.from_settings(settings),
        },
    )


defs = build_definitions(settings_at_load())

# Whatever exists now (Dagster, botocore, pandera, these definitions: hundreds of thousands of
# objects) lives as long as the process. Frozen, the cyclic collector stops re-scanning it at
# every full collection during a run and at interpreter exit (about a second per run process).
gc.freeze()
