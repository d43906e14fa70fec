"""The code location (`dagster … -m greenstream_dagster.definitions`): it only assembles.

Settings are read and validated here, at load, so bad configuration stops the
code location with a message naming the setting.
"""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.defs.dead_letters import build_dead_letter_sensor, build_replay_sensors, replay_dead_letters
from greenstream_dagster.defs.fault_checks import build_fault_checks
from greenstream_dagster.defs.jobs import build_jobs, retention_job
from greenstream_dagster.defs.partitions import daily_partitions
from greenstream_dagster.defs.reading_assets import build_reading_assets
from greenstream_dagster.defs.resources import OperationalStoreResource, RulesResource, S3Resource
from greenstream_dagster.defs.schedules import build_schedules
from greenstream_dagster.defs.sensors import build_raw_file_sensor
from greenstream_dagster.defs.store_assets import build_store_assets
from greenstream_dagster.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings.partitions_start)
    ingest_job, lake_job = build_jobs(partitions)
    return dg.Definitions(
        assets=[*build_reading_assets(partitions, settings.rules.window_days), *build_store_assets(partitions)],
        asset_checks=build_fault_checks(partitions),
        jobs=[ingest_job, lake_job, retention_job, replay_dead_letters],
        sensors=[
            build_raw_file_sensor(ingest_job, settings.lookback_days, settings.partitions_start),
            build_dead_letter_sensor([ingest_job, lake_job]),
            *build_replay_sensors(ingest_job),
        ],
        schedules=build_schedules(lake_job, retention_job, settings.schedule_timezone, settings.retention_days),
        resources={
            "s3": S3Resource(bucket=settings.bucket),
            "operational": OperationalStoreResource(),
            "rules": RulesResource.from_settings(settings),
        },
    )


defs = build_definitions(load_settings())
