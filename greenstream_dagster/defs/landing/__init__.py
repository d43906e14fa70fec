"""The landing domain: the S3 sensor that starts a day's ingest run, and the landing zone's freshness."""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.defs.landing.freshness import build_landing_freshness
from greenstream_dagster.defs.landing.sensor import build_raw_file_sensor
from greenstream_dagster.settings import Settings


def build_defs(settings: Settings, ingest_job) -> dg.Definitions:
    landing, checks, observe_job, observe_schedule, freshness_sensor = build_landing_freshness(settings.freshness_hours)
    sensor = build_raw_file_sensor(ingest_job, settings.lookback_days, settings.partitions_start,
                                   settings.sensor_interval_seconds, settings.day_run_spacing_seconds)
    return dg.Definitions(assets=landing, asset_checks=checks, jobs=[observe_job], schedules=[observe_schedule],
                          sensors=[sensor, freshness_sensor])
