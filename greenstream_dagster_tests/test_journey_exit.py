"""`greenstream journey` exits cleanly, every time: no native abort at interpreter exit
(`terminate called without an active exception`, exit 134) after the story is printed.
Against the instance `greenstream dev` makes (the project's dagster.yaml, Dagster's storage
on its own embedded PostgreSQL), 30 runs in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.services.dagster_instance import dagster_environment
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import load_settings
from greenstream_dagster.upload_command import upload_folder
from greenstream_dagster_tests.fixtures_postgres import server_folder

ROOT = Path(__file__).resolve().parents[1]
DAY = datetime.now(timezone.utc).date() - timedelta(days=1)
RUNS = 30


@pytest.fixture
def loaded(s3_env, s3_client, database_url, monkeypatch):
    with server_folder() as folder:
        env = {**s3_env, "GREENSTREAM_DATABASE_URL": database_url, "GREENSTREAM_DATA_DIR": str(folder),
               "GREENSTREAM_PARTITIONS_START": DAY.isoformat()}
        settings = load_settings(env)
        with resolve_services(settings) as services:
            env.update(dagster_environment(services, settings, env))
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            manifest = generate(GeneratorConfig(out=folder / "sample", meters=10, days=1, start=DAY, seed=8,
                                                rules=RulesConfig(partitions_start=DAY)))
            upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], folder / "sample" / "raw-data")
            instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
            try:
                job = build_definitions(load_settings()).resolve_job_def("ingest_partition_job")
                assert job.execute_in_process(partition_key=DAY.isoformat(), instance=instance).success
            finally:
                instance.dispose()
            yield env, manifest


def test_journey_exits_0_every_time(loaded):
    env, manifest = loaded
    readings = next(f for f in manifest.files if f.kind == "readings")
    command = [sys.executable, "-m", "greenstream_dagster.cli", "journey", "--source-key", readings.key, "--line", "2"]

    def journey(_) -> tuple[int, str, str]:
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=300)
        return done.returncode, done.stdout, done.stderr[-300:]

    with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: the machine's cores, not a race
        results = list(pool.map(journey, range(RUNS)))
    assert all("1. Ingestion" in stdout for _, stdout, _ in results)
    assert [code for code, _, _ in results] == [0] * RUNS, [(c, err) for c, _, err in results if c != 0][:3]
