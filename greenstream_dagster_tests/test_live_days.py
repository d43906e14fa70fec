"""Days as the platform lives them (SPEC §5, §6): empty days, late data that propagates,
and landing objects that disappear. Real embedded S3 and PostgreSQL, real Dagster runs on
one instance; the automation conditions are evaluated as the daemon's sensor would.

Expectations are worked out by hand from the rules (a meter's share of missing slots in
its window), not read back from the platform.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.rules.removed_objects import ACCEPT_REMOVAL_TAG
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import lake, staging
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster_tests.builders import HEADER, day_csv

pytestmark = pytest.mark.live

TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(days=5)
DAY0, DAY1, DAY2, DAY3 = (START + timedelta(days=k) for k in range(4))
ALL_ASSETS = ("raw_readings", "standardized_readings", "scored_readings", "meter_readings",
              "lake_readings", "lake_meter_daily")
WAVE = [0.5 + 0.1 * (i % 7) for i in range(96)]  # a meter that is neither stuck nor spiking


class Platform:
    """One instance and the definitions, like the daemon's; runs are executed in process."""

    def __init__(self, bucket: str, database_url: str, instance: dg.DagsterInstance):
        self.bucket, self.database_url, self.instance = bucket, database_url, instance
        self.defs = build_definitions(load_settings())
        self.automation_cursor = None
        self.sensor_cursor = None

    def materialize(self, day: date, assets=ALL_ASSETS, tags=None, run_config=None) -> dg.ExecuteInProcessResult:
        staging.forget_kept_frames()  # each run is a process of its own, as deployed
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            partition_key=day.isoformat(), instance=self.instance, raise_on_error=False,
            asset_selection=[dg.AssetKey(a) for a in assets], tags=tags or {}, run_config=run_config,
        )

    def sensor_requests(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.sensor_cursor, repository_def=self.defs.get_repository_def(),
            resources={"s3": S3Resource(bucket=self.bucket)},
        )
        result = self.defs.get_sensor_def("raw_file_sensor")(context)
        self.sensor_cursor = result.cursor
        return list(result.run_requests or [])

    def automation(self) -> dict[str, set[str]]:
        """One tick of the late-data cascade: asset → requested partition days."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.automation_cursor)
        self.automation_cursor = result.cursor
        return {
            key: set(result.get_requested_partitions(dg.AssetKey(key)))
            for key in ALL_ASSETS if result.get_requested_partitions(dg.AssetKey(key))
        }

    def query(self, sql: str, *params):
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def platform(point_platform, s3_env, database_url, monkeypatch, tmp_path):
    point_platform(START)
    with dg.instance_for_test() as instance:
        yield Platform(s3_env["GREENSTREAM_BUCKET"], database_url, instance)


def upload(s3_client, platform, day: date, name: str, text: str) -> str:
    key = f"raw-data/{day}/{name}"
    put_object(s3_client, platform.bucket, key, (HEADER + text).encode())
    return key


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


# ---------------------------------------------------------------- every partition materializes

def test_a_day_without_landing_files_is_an_empty_day(platform, s3_client):
    result = platform.materialize(DAY2)
    assert result.success
    assert platform.query("SELECT count(*) FROM meter_readings WHERE partition_date = %s", DAY2) == [(0,)]
    assert lake.read_lake_day(s3_client, platform.bucket, "readings", DAY2).height == 0
    assert lake.read_lake_day(s3_client, platform.bucket, "meter_daily", DAY2).height == 0
    evaluations = checks(result)
    for name in ("stuck_meters", "erratic_spikes", "communication_gaps", "standardized_schema", "scored_schema"):
        assert evaluations[name].passed, name
    assert evaluations["communication_gaps"].metadata["meters"].value == 0


def test_the_operational_store_is_loaded_before_the_lake(platform, s3_client):
    """Fresh readings are awaited in PostgreSQL: its load runs as soon as the scored readings are
    staged, not after the lake steps that are ready at the same time."""
    upload(s3_client, platform, DAY1, "a.csv", day_csv("SM-1", DAY1, WAVE))
    result = platform.materialize(DAY1, (*ALL_ASSETS, "meter_registry", "silent_meters"))
    assert result.success
    started = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    after_scored = started[started.index("scored_readings.score_day") + 1:]  # the day's last scoring step
    assert after_scored[0] == "meter_readings", started


def test_scored_day_whose_upstream_never_ran_is_empty_not_failed(platform, s3_client):
    # A UI backfill's window mapping fans scored_readings out to later days (today) whose
    # standardized readings do not exist; the 02:00 rollup does the same on a quiet day.
    assert platform.materialize(TODAY, ("scored_readings", "meter_readings", "lake_readings", "lake_meter_daily")).success
    assert platform.materialize(DAY3, ("lake_readings", "lake_meter_daily")).success
    assert lake.read_lake_day(s3_client, platform.bucket, "readings", TODAY).height == 0


def test_an_empty_load_never_wipes_stored_readings(platform, s3_client):
    upload(s3_client, platform, DAY0, "a.csv", day_csv("SM-1", DAY0, WAVE))
    assert platform.materialize(DAY0).success
    # Staging lost (expired by a lifecycle rule): scored_readings reads as empty, and the
    # load refuses rather than deleting the 96 stored readings.
    for name in ("readings", "meters"):
        s3_client.delete_object(Bucket=platform.bucket, Key=f"staging/scored_readings/date={DAY0}/{name}.parquet")
    result = platform.materialize(DAY0, ("meter_readings",))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "PostgreSQL holds 96 readings" in failure and "materialize" in failure
    assert platform.query("SELECT count(*) FROM meter_readings WHERE partition_date = %s", DAY0) == [(96,)]


# ---------------------------------------------------------------- late data propagates

def gap_of(platform, meter: str, day: date) -> set[bool]:
    return {g for (g,) in platform.query(
        "SELECT DISTINCT meter_gap FROM meter_readings WHERE meter_id = %s AND partition_date = %s", meter, day)}


def test_a_backlog_file_re_scores_the_later_days_of_its_window_once(platform, s3_client):
    for day in (DAY0, DAY1, DAY2):
        upload(s3_client, platform, day, "fleet.csv", day_csv("SM-1", day, WAVE))
    upload(s3_client, platform, DAY1, "late-meter.csv", day_csv("SM-777", DAY1, WAVE))
    assert sorted(r.partition_key for r in platform.sensor_requests()) == [d.isoformat() for d in (DAY0, DAY1, DAY2)]
    for day in (DAY0, DAY1, DAY2):
        assert platform.materialize(day).success
    assert platform.automation() == {}  # first tick: nothing changed since

    # SM-777 on DAY1: its window is DAY0..DAY1 (clipped at the start), 192 slots, 96 with a
    # reading: 50 % missing > 20 % → gap. With DAY0's backlog: 0 % missing → no gap.
    assert gap_of(platform, "SM-777", DAY1) == {True}
    upload(s3_client, platform, DAY0, "backlog/late-meter.csv", day_csv("SM-777", DAY0, WAVE))
    [request] = platform.sensor_requests()
    assert request.partition_key == DAY0.isoformat()
    assert platform.materialize(DAY0).success  # the sensor's run of DAY0 only

    requested = platform.automation()
    downstream = ("scored_readings", "meter_readings", "lake_readings", "lake_meter_daily")
    # DAY1 and DAY2 read DAY0 in their windows; DAY0's own run already handled DAY0;
    # DAY3 was never materialized, so the cascade does not create it.
    assert requested == {asset: {DAY1.isoformat(), DAY2.isoformat()} for asset in downstream}
    for day in (DAY1, DAY2):
        assert platform.materialize(day, downstream).success
    assert gap_of(platform, "SM-777", DAY1) == {False}
    assert platform.automation() == {}  # each day once: the cascade stops


# ---------------------------------------------------------------- never wipe silently

def test_a_reload_whose_loaded_objects_are_gone_stops_and_names_them(platform, s3_client):
    kept = upload(s3_client, platform, DAY0, "kept.csv", day_csv("SM-1", DAY0, WAVE))
    gone = upload(s3_client, platform, DAY0, "gone.csv", day_csv("SM-2", DAY0, WAVE))
    assert platform.materialize(DAY0).success
    s3_client.delete_object(Bucket=platform.bucket, Key=gone)

    result = platform.materialize(DAY0)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert gone in message and kept not in message and "accept_removed_objects" in message
    assert platform.query("SELECT count(*) FROM meter_readings WHERE partition_date = %s", DAY0) == [(192,)]

    # Told to accept it (the tag a UI backfill can carry), the run removes SM-2's 96 readings,
    # counts them and keeps each in removed_readings.
    accepted = platform.materialize(DAY0, tags={ACCEPT_REMOVAL_TAG: "true"})
    assert accepted.success
    load = next(m for m in accepted.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey("meter_readings")).materialization.metadata
    assert load["deleted"].value == 96
    assert platform.query("SELECT meter_id, count(*) FROM meter_readings WHERE partition_date = %s GROUP BY 1", DAY0) == [("SM-1", 96)]
    audited = platform.query("SELECT meter_id, count(*), min(removed_by_run), min(reading->>'source_key') "
                             "FROM removed_readings GROUP BY 1")
    assert audited == [("SM-2", 96, accepted.run_id, gone)]


def test_run_config_also_accepts_a_removal(platform, s3_client):
    gone = upload(s3_client, platform, DAY0, "gone.csv", day_csv("SM-2", DAY0, WAVE))
    assert platform.materialize(DAY0).success
    s3_client.delete_object(Bucket=platform.bucket, Key=gone)
    config = {"ops": {"raw_readings": {"config": {"accept_removed_objects": True}}}}
    assert platform.materialize(DAY0, run_config=config).success
    assert platform.query("SELECT count(*) FROM removed_readings") == [(96,)]
