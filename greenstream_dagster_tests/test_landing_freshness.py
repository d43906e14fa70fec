"""Landing freshness (SPEC §3a): a landing folder without a new object for longer than the limit is
stale in Dagster (the freshness check on `landing_zone` fails), and fresh within it."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import dagster as dg

from greenstream_dagster.defs.landing.freshness import LANDING, build_landing_freshness
from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.storage.landing import put_object


def evaluate(instance, bucket: str, freshness_hours: float) -> dg.AssetCheckEvaluation:
    """Observe the landing zone and run its freshness check, as the observation schedule's run does."""
    assets, checks, observe_job, _, _ = build_landing_freshness(freshness_hours)
    defs = dg.Definitions(assets=assets, asset_checks=checks, jobs=[observe_job],
                          resources={"s3": S3Resource(bucket=bucket)})
    result = defs.resolve_job_def(observe_job.name).execute_in_process(instance=instance)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def latest_check_record(instance) -> bool:
    key = dg.AssetCheckKey(dg.AssetKey(LANDING), "freshness_check")
    (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    return record.event.dagster_event.event_specific_data.passed


def test_a_quiet_landing_folder_is_stale_after_the_limit(s3_env, s3_client, bucket, monkeypatch):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    today = datetime.now(timezone.utc).date()
    put_object(s3_client, bucket, f"raw-data/{today}/meters-1.csv", b"meter_id,timestamp,value,unit\n")
    with dg.instance_for_test() as instance:
        fresh = evaluate(instance, bucket, freshness_hours=2)
        assert fresh.passed and latest_check_record(instance)

        time.sleep(3)  # nothing new lands for longer than a 2-second limit
        stale = evaluate(instance, bucket, freshness_hours=2 / 3600)
        assert not stale.passed
        assert stale.severity == dg.AssetCheckSeverity.WARN
        assert not latest_check_record(instance)  # what the UI reads from the instance

        # A new object: the zone's last update is that object's arrival, and the check passes again.
        key = f"raw-data/{today}/meters-2.csv"
        put_object(s3_client, bucket, key, b"meter_id,timestamp,value,unit\n")
        arrived = s3_client.head_object(Bucket=bucket, Key=key)["LastModified"].timestamp()
        assert evaluate(instance, bucket, freshness_hours=2).passed and latest_check_record(instance)
        observation = instance.fetch_observations(dg.AssetKey(LANDING), limit=1).records[0]
        metadata = observation.asset_observation.metadata
        assert metadata["dagster/last_updated_timestamp"].value == arrived
        assert metadata["objects"].value == 2 and metadata["newest_object"].value == key
