"""Landing freshness (SPEC §3a): the current day's landing folder going quiet shows in the UI.

What matters is when the landing folder last *received an object*, not when
`raw_readings` last materialized: a run can be re-launched on an old folder
(the asset would look fresh) and a quiet zone issues no run at all (a check on
`raw_readings` would only ever be evaluated when nothing is wrong). So the
landing zone is an observable source asset, `landing_zone`, upstream of
`raw_readings`: each observation lists today's (UTC) date folder and reports
its newest object's last-modified time as `dagster/last_updated_timestamp`,
never earlier than the start of the day (at 00:30 an empty folder is not late).

Dagster's own last-update freshness check on `landing_zone` then fails (WARN)
when that time is older than the limit (GREENSTREAM_FRESHNESS_HOURS, 2 h), and
the asset graph, the asset's Checks tab and the overview show it. A schedule
observes the zone every 15 minutes (the observation run evaluates the check),
and Dagster's freshness-check sensor re-evaluates a passing check once it could
have become overdue, so no poller of our own is needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg

from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.rules.landing_key import date_folder
from greenstream_dagster.storage import landing

LANDING = "landing_zone"
OBSERVE_CRON = "*/15 * * * *"


@dg.observable_source_asset(
    name=LANDING, group_name="readings",
    description="The S3 landing zone raw-data/YYYY-MM-DD/: observed every 15 minutes; its last update is "
    "the newest object of today's date folder.",
)
def landing_zone(context, s3: S3Resource) -> dg.ObserveResult:
    now = datetime.now(timezone.utc)
    today = now.date()
    objects = landing.list_date_folder(s3.client(), s3.bucket, today)
    newest = max(objects, key=lambda o: (o.last_modified, o.key)) if objects else None
    start_of_day = datetime(today.year, today.month, today.day, tzinfo=timezone.utc)
    updated = max(newest.last_modified, start_of_day) if newest else start_of_day
    return dg.ObserveResult(
        data_version=dg.DataVersion(f"{today}/{len(objects)}/{newest.etag if newest else '-'}"),
        metadata={
            "dagster/last_updated_timestamp": dg.MetadataValue.timestamp(updated),
            "date_folder": date_folder(today),
            "objects": len(objects),
            "newest_object": newest.key if newest else "none",
            "minutes_since_last_object": round((now - updated).total_seconds() / 60, 1),
        },
    )


def build_landing_freshness(freshness_hours: float):
    """The source asset, its freshness check, the observation job and schedule, and the check sensor."""
    checks = dg.build_last_update_freshness_checks(
        assets=[LANDING], lower_bound_delta=timedelta(hours=freshness_hours))
    observe_job = dg.define_asset_job(
        "observe_landing_job", selection=dg.AssetSelection.assets(LANDING),
        description="Observe the landing zone (newest object of today's folder) and check its freshness.")
    schedule = dg.ScheduleDefinition(
        name="landing_observation_schedule", cron_schedule=OBSERVE_CRON, job=observe_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every 15 minutes: when did today's landing folder last receive an object?")
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, name="landing_freshness_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=300)
    return [landing_zone], checks, observe_job, schedule, sensor
