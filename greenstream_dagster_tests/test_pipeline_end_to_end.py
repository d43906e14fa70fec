"""End to end on the real embedded S3 and PostgreSQL (SPEC §6): generator files uploaded →
sensor evaluation → the requested runs → rows in PostgreSQL and the lake exactly as the
generator's manifest says, per-partition check results recorded.

The expectations come from the generator's manifest, computed from what it injected, not
from the platform's own output.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import lake
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster.upload_command import upload_folder

TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(days=3)  # three days ending yesterday: inside the sensor's look-back
DAYS = [START + timedelta(days=k) for k in range(3)]
CHECKS = ("stuck_meters", "erratic_spikes", "communication_gaps")


class Platform:
    """Definitions, one Dagster instance and the sensor's cursor, like a running daemon."""

    def __init__(self, bucket: str, database_url: str, instance: dg.DagsterInstance):
        self.bucket, self.database_url, self.instance = bucket, database_url, instance
        self.defs = build_definitions(load_settings())
        self.cursor: str | None = None

    def evaluate_sensor(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, repository_def=self.defs.get_repository_def(),
            resources={"s3": S3Resource(bucket=self.bucket)},
        )
        result = self.defs.get_sensor_def("raw_file_sensor")(context)
        self.cursor = result.cursor
        return sorted(result.run_requests or [], key=lambda r: r.partition_key)

    def run(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("ingest_partition_job")
        return job.execute_in_process(partition_key=request.partition_key, instance=self.instance, tags=request.tags)

    def query(self, sql: str, *params):
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def sample(tmp_path):
    config = with_preset(
        GeneratorConfig(out=tmp_path / "sample", meters=80, days=len(DAYS), start=START, seed=11,
                        rules=RulesConfig(partitions_start=START)),
        "default",
    )
    return generate(config), config.out


@pytest.fixture
def platform(point_platform, s3_env, database_url, monkeypatch, tmp_path):
    point_platform(START)
    with dg.instance_for_test() as instance:
        yield Platform(s3_env["GREENSTREAM_BUCKET"], database_url, instance)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_uploaded_files_flow_to_postgres_and_lake_as_the_manifest_says(platform, sample, s3_client):
    manifest, folder = sample
    upload_folder(s3_client, platform.bucket, folder / "raw-data")

    requests = platform.evaluate_sensor()
    assert [r.partition_key for r in requests] == [d.isoformat() for d in DAYS]
    results = {r.partition_key: platform.run(r) for r in requests}
    assert all(result.success for result in results.values())

    for expected in manifest.expected:
        day = expected.date
        readings = platform.query("SELECT count(*) FROM meter_readings WHERE partition_date = %s", day)[0][0]
        assert readings == expected.readings, day
        grades = dict(platform.query(
            "SELECT quality_grade, count(*) FROM meter_readings WHERE partition_date = %s GROUP BY 1", day))
        assert grades == {g: n for g, n in expected.grades.items() if n}, day
        quarantined = dict(platform.query(
            "SELECT reason, count(*) FROM rejected_readings WHERE partition_date = %s GROUP BY 1", day))
        assert quarantined == {c: n for c, n in expected.quarantined.items() if n}, day
        revisions = platform.query("SELECT count(*) FROM reading_revisions WHERE partition_date = %s", day)[0][0]
        assert revisions == expected.revisions, day
        dead = platform.query("SELECT count(*) FROM dead_letter_files WHERE partition_date = %s AND kind = 'file'", day)[0][0]
        assert dead == expected.dead_letter_files, day
        stuck = {m for (m,) in platform.query(
            "SELECT DISTINCT meter_id FROM meter_readings WHERE partition_date = %s AND meter_stuck", day)}
        assert stuck == set(expected.stuck_meters), day
        spikes = {(m, ts.strftime("%Y-%m-%dT%H:%M:%SZ")) for m, ts in platform.query(
            "SELECT meter_id, reading_ts AT TIME ZONE 'UTC' FROM meter_readings WHERE partition_date = %s AND is_spike", day)}
        assert spikes == {(s["meter_id"], s["timestamp"]) for s in expected.spike_readings}, day
        gaps = {m for (m,) in platform.query(
            "SELECT DISTINCT meter_id FROM meter_readings WHERE partition_date = %s AND meter_gap", day)}
        assert gaps == set(expected.gap_meters), day

        lake_day = datetime.fromisoformat(day).date()
        lake_readings = lake.read_lake_day(s3_client, platform.bucket, "readings", lake_day)
        assert lake_readings.height == sum(n for g, n in expected.grades.items() if g in "ABC")
        assert "record_id" not in lake_readings.columns
        daily = lake.read_lake_day(s3_client, platform.bucket, "meter_daily", lake_day)
        assert daily.height == platform.query(
            "SELECT count(DISTINCT meter_id) FROM meter_readings WHERE partition_date = %s", day)[0][0]

        checks = check_results(results[day])
        assert set(CHECKS) <= set(checks)
        for name in CHECKS:
            assert checks[name].partition == day
            assert checks[name].passed, (day, name)  # 1 faulty meter of 80 is below the 5 % limit
        assert checks["standardized_schema"].passed and checks["scored_schema"].passed

    # Every revision of the manifest is audited once, its winner flagged REVISED.
    for revision in manifest.revisions:
        audited = platform.query("SELECT count(*) FROM reading_revisions WHERE record_id = %s", revision.old_record_id)
        assert audited[0][0] == 1
        winner = platform.query("SELECT revised FROM meter_readings WHERE record_id = %s", revision.new_record_id)
        assert winner == [(True,)]


def test_checks_warn_per_partition_above_the_configured_share(platform, sample, s3_client, monkeypatch):
    manifest, folder = sample
    monkeypatch.setenv("GREENSTREAM_CHECK_WARN_SHARE", "0.0")
    platform.defs = build_definitions(load_settings())
    upload_folder(s3_client, platform.bucket, folder / "raw-data")
    requests = platform.evaluate_sensor()
    by_day = {e.date: e for e in manifest.expected}
    for request in requests:
        checks = check_results(platform.run(request))
        expected = by_day[request.partition_key]
        assert checks["stuck_meters"].passed == (not expected.stuck_meters)
        assert checks["communication_gaps"].passed == (not expected.gap_meters)
        assert checks["erratic_spikes"].passed == (not expected.spike_readings)
        for name in CHECKS:
            assert checks[name].severity == dg.AssetCheckSeverity.WARN
    warned = [r.partition_key for r in requests if manifest.faults.stuck and
              any(f.date == r.partition_key for f in manifest.faults.stuck)]
    assert warned, "the sample holds a stuck meter on some day"


def test_same_files_again_request_nothing_and_a_late_file_reruns_only_its_day(platform, sample, s3_client):
    manifest, folder = sample
    upload_folder(s3_client, platform.bucket, folder / "raw-data")
    for request in platform.evaluate_sensor():
        assert platform.run(request).success
    before = platform.query("SELECT partition_date, count(*), max(loaded_at) FROM meter_readings GROUP BY 1 ORDER BY 1")

    upload_folder(s3_client, platform.bucket, folder / "raw-data")  # the same content again
    assert platform.evaluate_sensor() == []

    # A restarted daemon: a new sensor built from scratch, with the stored cursor, repeats nothing.
    restarted = Platform(platform.bucket, platform.database_url, platform.instance)
    restarted.cursor = platform.cursor
    assert restarted.evaluate_sensor() == []

    # A late file lands in the oldest date folder, under a key sorting before the others.
    oldest = DAYS[0]
    late_key = f"raw-data/{oldest}/0-late/late.csv"
    put_object(s3_client, platform.bucket, late_key,
               f"meter_id,timestamp,value,unit\nSM-999999,{oldest}T12:00:00Z,1234,W\n".encode())
    requests = restarted.evaluate_sensor()
    assert [r.partition_key for r in requests] == [oldest.isoformat()]
    assert restarted.run(requests[0]).success

    after = platform.query("SELECT partition_date, count(*), max(loaded_at) FROM meter_readings GROUP BY 1 ORDER BY 1")
    changed = {row[0] for row in after} ^ {row[0] for row in before} | {a[0] for a, b in zip(after, before) if a != b}
    assert changed == {oldest}
    assert platform.query("SELECT value_kw, source_key FROM meter_readings WHERE meter_id = 'SM-999999'") == [(1.234, late_key)]
