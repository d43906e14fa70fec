"""The README's main command (`greenstream dev`, what `make dev` runs): embedded S3 and
PostgreSQL, sample data in the landing zone, `dagster dev` with the sensor on — runs
succeed on their own; Ctrl-C stops everything; a second start reuses the data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
RUNS = '{ runsOrError { ... on Runs { results { status tags { key value } } } } }'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def runs(port: int) -> list[tuple[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": RUNS}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        results = json.load(response)["data"]["runsOrError"]["results"]
    return [(r["status"], next((t["value"] for t in r["tags"] if t["key"] == "dagster/partition"), "")) for r in results]


def start(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GREENSTREAM_", "DAGSTER_"))},
           "GREENSTREAM_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "greenstream_dagster.cli", "dev", "--port", str(port), "--meters", "30", "--days", "2"],
        cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_with_ctrl_c(process: subprocess.Popen) -> int:
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    return process.wait(timeout=120)


def processes_under(data_dir: Path) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listing if str(data_dir) in line and "pytest" not in line]


@pytest.fixture
def data_dir():
    import shutil
    import tempfile

    # Outside pytest's temporary root: the embedded PostgreSQL runs as another user (see fixtures_postgres).
    path = Path(tempfile.mkdtemp(prefix="greenstream-dev-test-"))
    yield path
    for _process in processes_under(path):  # never leave a server behind, even when the test failed
        subprocess.run(["pkill", "-f", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


def test_dev_runs_the_platform_stops_on_ctrl_c_and_restarts_on_the_same_data(data_dir):
    port, log = free_port(), data_dir / "dev.log"
    process = start(data_dir, port, log)
    try:
        deadline, done = time.monotonic() + 300, []
        while time.monotonic() < deadline and len(done) < 2:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                done = [day for status, day in runs(port) if status == "SUCCESS" and day]  # partition runs
                failed = [day for status, day in runs(port) if status == "FAILURE"]
                assert not failed, f"runs failed for {failed}: {log.read_text()[-3000:]}"
            except OSError:
                pass  # the UI is still starting
            time.sleep(3)
        assert len(done) == 2, f"expected the sensor's two runs to succeed, got {runs(port)}"
        assert "uploaded to the landing zone" in log.read_text()
        assert "DAGSTER_POSTGRES_URL" in (data_dir / "services.env").read_text()
    finally:
        code = stop_with_ctrl_c(process)
    assert code == 0 or code == -signal.SIGINT or code == 130, log.read_text()[-2000:]
    time.sleep(2)
    assert processes_under(data_dir) == [], "Ctrl-C left servers running"

    port = free_port()
    again = start(data_dir, port, log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                previous = runs(port)
                break
            except OSError:
                time.sleep(2)
        assert sorted(day for status, day in previous if status == "SUCCESS" and day) == sorted(done)
        assert "already in the landing zone" in log.read_text()
    finally:
        stop_with_ctrl_c(again)
