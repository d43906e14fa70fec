"""SPEC §6 outages as deployed: the real daemon, the project's dagster.yaml with Dagster's storage on
its own embedded PostgreSQL (as `greenstream dev` sets it up), the operational embedded PostgreSQL
stopped while a run loads a day.

- 25 s down: the load's retries (2/4/8 s, each attempt waiting out the server for a while) see it
  back; the run succeeds, the retries are in the event log, nothing is doubled.
- Down until the run gives up: the day lands in the dead letters; `dagster job launch` of
  replay_dead_letters (through the run queue, like the UI's launch) makes the replay sensor queue
  an ingest run for the day, which completes it and closes the dead letter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.services.dagster_instance import dagster_environment
from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.operational.dead_letters import list_open_dead_letters
from greenstream_dagster.upload_command import upload_folder
from greenstream_dagster_tests.fixtures_postgres import server_folder

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
YESTERDAY = datetime.now(timezone.utc).date() - timedelta(days=1)
FIRST_DAY, SECOND_DAY = YESTERDAY - timedelta(days=1), YESTERDAY
METERS = 200
SHORT_OUTAGE_SECONDS = 25
RUN_TIMEOUT_SECONDS = 420


class Deployment:
    """The services, the daemon and the Dagster instance of one test."""

    def __init__(self, folder: Path, env: dict[str, str], operational: EmbeddedPostgres, database_url: str, s3_client):
        self.folder, self.env, self.operational, self.database_url = folder, env, operational, database_url
        self.s3_client = s3_client
        self.log = folder / "daemon.log"
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "dagster._daemon", "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])

    def close(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
        self.instance.dispose()
        self.operational.stop()

    def stop_operational(self) -> None:
        self.operational.stop()

    def start_operational(self) -> None:
        self.operational = EmbeddedPostgres(self.operational.data_dir, port=urlsplit(self.database_url).port)
        self.operational.start()

    def upload(self, day, seed: int) -> None:
        config = GeneratorConfig(out=self.folder / f"sample-{day}", meters=METERS, days=1, start=day, seed=seed,
                                 rules=RulesConfig(partitions_start=FIRST_DAY))
        generate(config)
        upload_folder(self.s3_client, self.env["GREENSTREAM_BUCKET"], config.out / "raw-data")

    def runs_of(self, day) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": day.isoformat()})))

    def wait_for(self, what: str, condition, timeout: float = RUN_TIMEOUT_SECONDS, poll: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.daemon.poll() is None, f"the daemon exited: {self.log.read_text()[-3000:]}"
            value = condition()
            if value:
                return value
            time.sleep(poll)
        raise AssertionError(f"timed out waiting for {what}; daemon log: {self.log.read_text()[-3000:]}")

    def step_events(self, run_id: str, event_type: dg.DagsterEventType, step_key: str) -> list:
        return [e for e in self.instance.all_logs(run_id, of_type=event_type)
                if e.dagster_event is not None and e.dagster_event.step_key == step_key]

    def wait_for_load_to_start(self, run_id: str) -> None:
        """Until the executor launches the meter_readings step: its worker process takes seconds to
        start, so a server stopped now is down when the step first reaches for it."""
        self.wait_for("the meter_readings step to launch", lambda: any(
            self.step_events(run_id, event_type, "meter_readings")
            for event_type in (dg.DagsterEventType.STEP_WORKER_STARTING, dg.DagsterEventType.STEP_START)
        ), poll=0.1)

    def readings(self, day) -> tuple[int, int]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(
                "SELECT count(*), count(DISTINCT (meter_id, reading_ts)) FROM meter_readings WHERE partition_date = %s",
                (day,),
            ).fetchone()


@pytest.fixture
def deployment(s3_env, s3_client, monkeypatch):
    with server_folder() as folder:
        operational = EmbeddedPostgres(folder / "postgres")
        database_url = operational.start()
        env = {**s3_env, "GREENSTREAM_DATABASE_URL": database_url, "GREENSTREAM_DATA_DIR": str(folder),
               "GREENSTREAM_PARTITIONS_START": FIRST_DAY.isoformat(),
               "GREENSTREAM_SENSOR_INTERVAL_SECONDS": "10",  # the sensor sees an upload sooner
               "GREENSTREAM_DAY_RUN_SPACING_SECONDS": "0"}
        settings = load_settings(env)
        services = resolve_services(settings)
        deployed = None
        try:
            # Dagster's instance exactly as `greenstream dev` makes it: the project's dagster.yaml,
            # its storage on a second embedded PostgreSQL under the data folder.
            env.update(dagster_environment(services, settings, env))
            assert urlsplit(env["DAGSTER_POSTGRES_URL"]).port != urlsplit(database_url).port
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            deployed = Deployment(folder, env, operational, database_url, s3_client)
            yield deployed
        finally:
            if deployed is not None:
                deployed.close()
            services.close()
            operational.stop()


def test_operational_outages_during_a_load_retry_or_dead_letter_and_replay_through_the_queue(deployment):
    # 1. 25 s down at the start of the load: the run survives on its retries.
    deployment.upload(FIRST_DAY, seed=11)
    run = deployment.wait_for(f"a run of {FIRST_DAY}", lambda: next(iter(deployment.runs_of(FIRST_DAY)), None))
    deployment.wait_for_load_to_start(run.run_id)
    deployment.stop_operational()
    time.sleep(SHORT_OUTAGE_SECONDS)
    deployment.start_operational()
    finished = deployment.wait_for("the run to finish", lambda: (
        r := deployment.instance.get_run_by_id(run.run_id)).is_finished and r)
    assert finished.status == dg.DagsterRunStatus.SUCCESS, deployment.log.read_text()[-3000:]
    retries = deployment.step_events(run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY, "meter_readings")
    assert retries, "\n".join(f"{e.dagster_event_type} {e.timestamp} {e.message[:300]}" for e in deployment.instance.all_logs(run.run_id)
                     if e.step_key == "meter_readings")
    assert deployment.readings(FIRST_DAY) == (METERS * 96, METERS * 96)

    # 2. Down until the run gives up: a dead letter, then a replay through the queue.
    deployment.upload(SECOND_DAY, seed=12)
    run = deployment.wait_for(f"a run of {SECOND_DAY}", lambda: next(iter(deployment.runs_of(SECOND_DAY)), None))
    deployment.wait_for_load_to_start(run.run_id)
    deployment.stop_operational()
    down_since = time.monotonic()
    failed = deployment.wait_for("the run to give up", lambda: (
        r := deployment.instance.get_run_by_id(run.run_id)).is_finished and r)
    outage = time.monotonic() - down_since
    deployment.start_operational()
    assert failed.status == dg.DagsterRunStatus.FAILURE
    retries = deployment.step_events(run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY, "meter_readings")
    assert len(retries) == 3
    assert outage > 2 * SHORT_OUTAGE_SECONDS - 10  # the attempts spanned well over 25 s before giving up

    # One dead letter per step that gave up (the load, and any fleet step that met the outage too),
    # recorded one after the other by dead_letter_sensor: wait for all of them.
    failed_steps = {e.step_key for e in deployment.instance.all_logs(run.run_id)
                    if e.dagster_event_type == dg.DagsterEventType.STEP_FAILURE}
    assert "meter_readings" in failed_steps
    letters = deployment.wait_for("the dead letters", lambda: (
        found := list_open_dead_letters(deployment.database_url, kind="partition")) and
        {d.asset_key for d in found} >= failed_steps and found)
    assert {(d.partition_date, d.run_id) for d in letters} == {(SECOND_DAY, run.run_id)}

    launched = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "launch", "-w", str(ROOT / "workspace.yaml"),
         "-j", "replay_dead_letters"],
        cwd=ROOT, env={**os.environ, **deployment.env}, capture_output=True, text=True, timeout=180,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]

    def replay_run():
        runs = [r for r in deployment.runs_of(SECOND_DAY) if r.tags.get("greenstream/replay_of")]
        return runs[0] if runs else None

    replay = deployment.wait_for("the replay run", replay_run)
    assert replay.tags["greenstream/replay_of"] == ",".join(str(d.dead_letter_id) for d in letters)
    replay = deployment.wait_for("the replay to finish", lambda: (
        r := deployment.instance.get_run_by_id(replay.run_id)).is_finished and r)
    assert replay.status == dg.DagsterRunStatus.SUCCESS, deployment.log.read_text()[-3000:]
    # It waited in the queue like any run of the day (not executed in another run's process).
    assert deployment.instance.all_logs(replay.run_id, of_type=dg.DagsterEventType.PIPELINE_ENQUEUED)
    assert deployment.readings(SECOND_DAY) == (METERS * 96, METERS * 96)
    deployment.wait_for("the dead letter to close",
                        lambda: not list_open_dead_letters(deployment.database_url, kind="partition"))
    assert deployment.readings(FIRST_DAY) == (METERS * 96, METERS * 96)
