"""SPEC §6: the 02:00 rollup materializes the previous day's lake; the retention runs daily."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.settings import load_settings


def tick(schedule_name: str, when: datetime, env=None):
    defs = build_definitions(load_settings(env or {}))
    schedule = defs.get_schedule_def(schedule_name)
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return schedule, schedule.evaluate_tick(context).run_requests


def test_two_am_tick_requests_the_previous_days_lake_partitions():
    schedule, requests = tick("lake_rollup_schedule", datetime(2024, 4, 16, 2, 0, tzinfo=ZoneInfo("UTC")))
    assert [r.partition_key for r in requests] == ["2024-04-15"]
    assert schedule.job_name == "lake_rollup_job"
    assert schedule.execution_timezone == "UTC"


def test_rollup_runs_in_the_configured_time_zone():
    env = {"GREENSTREAM_SCHEDULE_TIMEZONE": "Australia/Sydney"}
    schedule, requests = tick("lake_rollup_schedule", datetime(2024, 4, 16, 2, 0, tzinfo=ZoneInfo("Australia/Sydney")), env)
    assert schedule.execution_timezone == "Australia/Sydney"
    assert [r.partition_key for r in requests] == ["2024-04-15"]


def test_lake_job_selects_only_the_lake_assets():
    defs = build_definitions(load_settings({}))
    job = defs.resolve_job_def("lake_rollup_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"lake_readings", "lake_meter_daily"}


def test_retention_tick_passes_today_and_the_configured_limit():
    _, requests = tick("retention_schedule", datetime(2024, 7, 1, 2, 30, tzinfo=ZoneInfo("UTC")),
                       {"GREENSTREAM_RETENTION_DAYS": "30"})
    config = requests[0].run_config["ops"]["drop_expired_partitions"]["config"]
    assert config == {"today": "2024-07-01", "retention_days": 30}
