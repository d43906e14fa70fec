"""The platform as users run it (SPEC §6): `dagster dev` — webserver, daemon and code
server — with the project's own dagster.yaml (PostgreSQL storage, the day-keyed run queue),
on the embedded S3 and PostgreSQL. Generator files land in waves while the sensor works,
a backfill of earlier days is launched through GraphQL as the UI does (its window mapping
reaches today, which has no files), and a backlog file for the first day lands last.

When the platform has settled: no run failed, no two runs of one day overlapped (from the
run records), and every day in PostgreSQL and the lake equals a from-scratch
materialization of the same files, delivered in the same order, into fresh stores.
Run twice: as deployed by default, and with the days split into three meter shards
(the cold run stays one shard).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.asset_names import RAW, SCORED, STANDARDIZED
from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.instance.run_queue import DAY_TAG
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.storage import lake, staging
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster_tests.fixtures_postgres import with_database
from greenstream_dagster_tests.test_dev_command import free_port

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(days=5)
DAYS = [START + timedelta(days=k) for k in range(4)]
ASSETS = ("raw_readings", "standardized_readings", "scored_readings", "meter_readings",
          "lake_readings", "lake_meter_daily", "meter_registry", "silent_meters")  # every partitioned asset
BACKLOG_METERS = 8  # meters of the first day whose readings arrive last, as a backlog file
SENSOR_INTERVAL_SECONDS = 10  # the sensors tick faster than the default 15 s, so the test settles sooner
SETTLED_AFTER_SECONDS = 40  # quiet for longer than three sensor and automation ticks
ACTIVE = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]
    except urllib.error.HTTPError as error:
        raise AssertionError(f"GraphQL {error.code}: {error.read().decode()[:3000]}") from None


def split_backlog(files: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], tuple[str, bytes]]:
    """Move the plain data lines of a few meters out of the day's main readings file into a
    backlog file of their own (lines of other shapes stay where the generator put them)."""
    key, data = next((k, d) for k, d in files if k.endswith("/readings-0000.csv"))
    lines = data.decode().split("\n")
    def meter(line: str) -> str:
        return line.split(",")[0].strip('"')

    meters = sorted({meter(line) for line in lines[1:] if meter(line).startswith("SM-")})[:BACKLOG_METERS]
    late = [line for line in lines[1:] if meter(line) in meters]
    kept = [line for line in lines if line not in set(late)]
    day_folder = key.rsplit("/", 1)[0]
    backlog = (f"{day_folder}/backlog/late-meters.csv", ("\n".join([lines[0], *late]) + "\n").encode())
    return [(k, "\n".join(kept).encode() if k == key else d) for k, d in files], backlog


def landing_files(folder: Path, day: date) -> list[tuple[str, bytes]]:
    """(key, bytes) of a generated day folder, in key order (the generator's delivery order)."""
    base = folder / "raw-data" / day.isoformat()
    return [(f"raw-data/{day}/{p.relative_to(base).as_posix()}", p.read_bytes())
            for p in sorted(base.rglob("*")) if p.is_file()]


class Deliveries:
    """Puts files into one bucket and remembers the order, so a second bucket can get the same."""

    def __init__(self, s3_client, bucket: str):
        self.s3_client, self.bucket, self.order = s3_client, bucket, []

    def deliver(self, files: list[tuple[str, bytes]]) -> None:
        for key, data in files:
            put_object(self.s3_client, self.bucket, key, data)
        self.order.append(files)
        time.sleep(1.1)  # last-modified has whole seconds: later waves are later deliveries

    def replay_into(self, bucket: str) -> None:
        for wave in self.order:
            for key, data in wave:
                put_object(self.s3_client, bucket, key, data)
            time.sleep(1.1)


@pytest.fixture
def sample(tmp_path):
    config = with_preset(
        GeneratorConfig(out=tmp_path / "sample", meters=80, days=len(DAYS), start=START, seed=23,
                        rules=RulesConfig(partitions_start=START)),
        "default",
    )
    generate(config)
    return config.out


@pytest.fixture
def dagster_database(postgres_server):
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    # The driver named, as `greenstream dev` does (services/dagster_instance.py).
    yield with_database(postgres_server, name).replace("postgresql://", "postgresql+psycopg2://", 1)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# As deployed by default, and split into three meter shards (SPEC §10): the cold run it is
# compared with is one shard. (Shard steps in processes of their own: test_shard_split.py.)
SPLITS = {"one_shard": {}, "three_shards": {"GREENSTREAM_SHARDS": "3"}}


@pytest.fixture(params=list(SPLITS))
def platform_env(request, s3_env, database_url, dagster_database):
    home = Path(tempfile.mkdtemp(prefix="greenstream-live-"))
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENSTREAM_", "DAGSTER_"))}
    env.update(s3_env, GREENSTREAM_DATABASE_URL=database_url, GREENSTREAM_PARTITIONS_START=START.isoformat(),
               GREENSTREAM_DATA_DIR=str(home / "data"), DAGSTER_HOME=str(home),
               DAGSTER_POSTGRES_URL=dagster_database, PYTHONPATH=str(ROOT),
               GREENSTREAM_SENSOR_INTERVAL_SECONDS=str(SENSOR_INTERVAL_SECONDS),
               # Each wave's change runs at once, so "settled" means done (spacing: test_raw_file_sensor).
               GREENSTREAM_DAY_RUN_SPACING_SECONDS="0", **SPLITS[request.param])
    yield env
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def dagster_dev(platform_env):
    port = free_port()
    log = Path(platform_env["DAGSTER_HOME"]) / "dev.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-m", "greenstream_dagster.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=platform_env["DAGSTER_HOME"], env=platform_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            graphql(port, "{ version }")
            break
        except OSError:
            assert time.monotonic() < deadline, "dagster dev did not answer: " + log.read_text()[-3000:]
            time.sleep(2)
    yield port, log
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def instance_of(env: dict) -> dg.DagsterInstance:
    previous = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_POSTGRES_URL")}
    os.environ.update(DAGSTER_HOME=env["DAGSTER_HOME"], DAGSTER_POSTGRES_URL=env["DAGSTER_POSTGRES_URL"])
    try:
        return dg.DagsterInstance.get()
    finally:
        for k, v in previous.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def wait_until_settled(instance: dg.DagsterInstance, log: Path, timeout: float = 900) -> list[dg.RunRecord]:
    """Until no run is active and none started for SETTLED_AFTER_SECONDS (sensors tick every SENSOR_INTERVAL_SECONDS)."""
    deadline, quiet_since, seen = time.monotonic() + timeout, None, -1
    while True:
        records = instance.get_run_records()
        active = [r for r in records if r.dagster_run.status.value in ACTIVE]
        if active or len(records) != seen:
            quiet_since, seen = time.monotonic(), len(records)
        elif time.monotonic() - quiet_since > SETTLED_AFTER_SECONDS:
            return records
        assert time.monotonic() < deadline, f"not settled: {len(active)} active runs\n{log.read_text()[-3000:]}"
        time.sleep(5)


def day_of(record: dg.RunRecord) -> str | None:
    return record.dagster_run.tags.get(DAY_TAG)


def overlaps(records: list[dg.RunRecord]) -> list[tuple[str, str, str]]:
    by_day: dict[str, list[tuple[float, float, str]]] = {}
    for r in records:
        if day_of(r) and r.start_time:
            by_day.setdefault(day_of(r), []).append((r.start_time, r.end_time or time.time(), r.dagster_run.run_id))
    found = []
    for day, spans in by_day.items():
        spans.sort()
        found += [(day, a[2], b[2]) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    return found


def store_state(database_url: str, s3_client, bucket: str) -> dict:
    """What a user reads of the sample's days: the operational tables (without load times) and the lake."""
    tables = {}
    days = list(DAYS)
    with psycopg.connect(database_url) as conn:
        for table, order, where in (
            ("meter_readings", "partition_date, meter_id, reading_ts", "partition_date = ANY(%s)"),
            ("rejected_readings", "partition_date, source_key, source_line", "partition_date = ANY(%s)"),
            ("reading_revisions", "partition_date, meter_id, reading_ts, record_id", "partition_date = ANY(%s)"),
            ("silent_meters", "partition_date, meter_id", "partition_date = ANY(%s)"),
            ("meters", "meter_id", "first_seen = ANY(%s)"),
        ):
            columns = [c for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND column_name NOT IN ('loaded_at', 'updated_at') ORDER BY ordinal_position", (table,))]
            tables[table] = conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY {order}", (days,)).fetchall()
    lake_days = {}
    for day in DAYS:
        for name, key in (("readings", ["meter_id", "reading_ts"]), ("meter_daily", ["meter_id"])):
            frame = lake.read_lake_day(s3_client, bucket, name, day)
            lake_days[(name, day)] = frame.sort(key).to_dicts() if frame is not None else None
    return {"tables": tables, "lake": lake_days}


def from_scratch(deliveries: Deliveries, s3_client, bucket: str, database_url: str, env: dict) -> dict:
    """The same files, in the same order, materialized day by day into fresh stores, in process."""
    deliveries.replay_into(bucket)
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("GREENSTREAM_", "AWS_"))},
                      GREENSTREAM_BUCKET=bucket, GREENSTREAM_DATABASE_URL=database_url, GREENSTREAM_SHARDS="1")
    try:
        from greenstream_dagster.definitions import build_definitions
        from greenstream_dagster.settings import load_settings

        job = build_definitions(load_settings()).resolve_implicit_global_asset_job_def()
        with dg.instance_for_test() as instance:
            for day in DAYS:
                result = job.execute_in_process(partition_key=day.isoformat(), instance=instance,
                                                asset_selection=[dg.AssetKey(a) for a in ASSETS])
                assert result.success, day
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return store_state(database_url, s3_client, bucket)


@pytest.mark.timeout(1500)
def test_waves_backfill_and_backlog_settle_green_without_overlap_and_equal_a_cold_run(
    sample, dagster_dev, platform_env, s3_client, bucket, empty_database_url, postgres_server
):
    port, log = dagster_dev
    deliveries = Deliveries(s3_client, bucket)
    first_day, backlog = split_backlog(landing_files(sample, DAYS[0]))
    assert backlog[1].count(b"\n") > 96, "the backlog holds whole days of a few meters"

    # Wave 1: the first two days (the first without its backlog); the sensor picks them up.
    deliveries.deliver(first_day + landing_files(sample, DAYS[1]))
    time.sleep(2 * SENSOR_INTERVAL_SECONDS)
    # Wave 2 lands while a UI backfill of the first two days, all assets, is launched: its
    # window mapping also reaches scored_readings of later days up to today (no files).
    deliveries.deliver(landing_files(sample, DAYS[2]))
    launched = graphql(port, BACKFILL, {"params": {
        "partitionNames": [DAYS[0].isoformat(), DAYS[1].isoformat()],
        "assetSelection": [{"path": [a]} for a in ASSETS], "fromFailure": False,
        "title": "test backfill"}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    time.sleep(SENSOR_INTERVAL_SECONDS)
    deliveries.deliver(landing_files(sample, DAYS[3]))
    instance = instance_of(platform_env)
    before_backlog = {r.dagster_run.run_id for r in wait_until_settled(instance, log)}
    [backfill] = instance.get_backfills()
    assert backfill.status.value in ("COMPLETED", "COMPLETED_SUCCESS"), backfill.status

    # The backlog of the first day lands last: its run re-standardizes that day, and the
    # cascade re-scores and reloads the later days whose window holds it.
    deliveries.deliver([backlog])
    records = wait_until_settled(instance, log)
    failed = [(day_of(r), r.dagster_run.run_id) for r in records if r.dagster_run.status.value != "SUCCESS"]
    assert failed == [], log.read_text()[-5000:]
    assert overlaps(records) == []
    launched_by = {r.dagster_run.tags.get("dagster/sensor_name") or
                   ("backfill" if r.dagster_run.tags.get("dagster/backfill") else "other") for r in records}
    assert {"raw_file_sensor", "backfill"} <= launched_by, launched_by
    after_backlog = [r for r in records if r.dagster_run.run_id not in before_backlog]
    cascaded = {day_of(r) for r in after_backlog if r.dagster_run.tags.get("dagster/sensor_name") == "late_data_cascade"}
    assert {d.isoformat() for d in DAYS[1:]} <= cascaded, [(day_of(r), r.dagster_run.tags) for r in after_backlog]
    # Every run that touched a day carried the day key the queue limits on.
    partitioned = [r for r in records if {"dagster/partition", "dagster/asset_partition_range_start"} & set(r.dagster_run.tags)]
    assert partitioned and all(day_of(r) for r in partitioned)

    shards = int(platform_env.get("GREENSTREAM_SHARDS", "1"))
    assert {staging.layout(s3_client, bucket, asset, day) for asset in (RAW, STANDARDIZED, SCORED) for day in DAYS} == {shards}
    live = store_state(platform_env["GREENSTREAM_DATABASE_URL"], s3_client, bucket)
    assert live["tables"]["meter_readings"], "the platform loaded readings"
    cold_bucket = f"cold-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=cold_bucket)
    cold = from_scratch(deliveries, s3_client, cold_bucket, empty_database_url, platform_env)
    assert live["tables"] == cold["tables"]
    assert live["lake"] == cold["lake"]
