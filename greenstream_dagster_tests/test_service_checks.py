"""Services are checked once at start (issue 8, SPEC §7), against real servers.

An unreachable S3 endpoint, a missing bucket, a wrong secret, an unreachable
database and a wrong password each stop the `greenstream` command and the
`dagster` CLI's code location load with one line naming the setting, never a
password and never a traceback wall. Run workers do not check: an outage there
is for the steps' retries.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from greenstream_dagster.defs.code_location_start import is_run_worker
from greenstream_dagster.services import embedded_s3

SECRET = "wrong-secret-f00"
PASSWORD = "wrong-pa55word"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@pytest.fixture
def good_env(s3_env, empty_database_url, tmp_path) -> dict[str, str]:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENSTREAM_", "AWS_"))}
    return {**env, **s3_env, "GREENSTREAM_DATABASE_URL": empty_database_url,
            "GREENSTREAM_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home")}


# (kind, change to a good environment, setting named)
FAULTS = [
    ("unreachable S3 endpoint", lambda env: {"GREENSTREAM_S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"},
     "GREENSTREAM_S3_ENDPOINT_URL"),
    ("missing bucket", lambda env: {"GREENSTREAM_BUCKET": f"missing-{uuid.uuid4().hex[:12]}"}, "GREENSTREAM_BUCKET"),
    ("wrong S3 secret", lambda env: {"AWS_SECRET_ACCESS_KEY": SECRET}, "AWS_SECRET_ACCESS_KEY"),
    ("unknown S3 access key", lambda env: {"AWS_ACCESS_KEY_ID": "nobody"}, "AWS_ACCESS_KEY_ID"),
    ("unreachable database", lambda env: {"GREENSTREAM_DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:{_closed_port()}/db"},
     "GREENSTREAM_DATABASE_URL"),
    ("wrong database password", lambda env: {"GREENSTREAM_DATABASE_URL": _with_password(env["GREENSTREAM_DATABASE_URL"], PASSWORD)},
     "GREENSTREAM_DATABASE_URL"),
    ("database URL pointing at the S3 port", lambda env: {
        "GREENSTREAM_DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:{urlsplit(env['GREENSTREAM_S3_ENDPOINT_URL']).port}/db"},
     "GREENSTREAM_DATABASE_URL"),
    ("S3 endpoint pointing at the PostgreSQL port", lambda env: {
        "GREENSTREAM_S3_ENDPOINT_URL": f"http://127.0.0.1:{urlsplit(env['GREENSTREAM_DATABASE_URL']).port}"},
     "GREENSTREAM_S3_ENDPOINT_URL"),
    ("missing database", lambda env: {"GREENSTREAM_DATABASE_URL": env["GREENSTREAM_DATABASE_URL"].rsplit("/", 1)[0] + "/nosuchdb"},
     "GREENSTREAM_DATABASE_URL"),
]
CASES = [pytest.param(change, setting, id=kind) for kind, change, setting in FAULTS]


def _secrets_absent(output: str) -> None:
    assert SECRET not in output and PASSWORD not in output
    assert embedded_s3.SECRET_ACCESS_KEY not in output


@pytest.mark.parametrize("change, setting", CASES)
def test_the_greenstream_command_stops_with_one_line(good_env, change, setting):
    env = {**good_env, **change(good_env)}
    result = subprocess.run([sys.executable, "-m", "greenstream_dagster.cli", "services"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"greenstream: configuration error: {setting}: "), result.stderr
    _secrets_absent(result.stderr)


@pytest.mark.parametrize("change, setting", CASES)
def test_dagster_materialize_stops_at_load_with_one_line(good_env, change, setting):
    env = {**good_env, **change(good_env)}
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "greenstream_dagster.definitions",
               "--select", "raw_readings", "--partition", "2024-01-02"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=env["DAGSTER_HOME"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {setting}: "), output[-3000:]
    _secrets_absent(output)


def test_dagster_validate_shows_the_line_first_and_no_driver_traceback(good_env):
    """`definitions validate` catches load errors itself and adds a short stack of user frames."""
    env = {**good_env, "GREENSTREAM_DATABASE_URL": _with_password(good_env["GREENSTREAM_DATABASE_URL"], PASSWORD)}
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "greenstream_dagster.definitions"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=env["DAGSTER_HOME"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ConfigurationErrorAtLoad: GREENSTREAM_DATABASE_URL: PostgreSQL at 127.0.0.1:" in output, output[-3000:]
    assert "psycopg" not in output and "Traceback" not in output
    assert len(output.splitlines()) < 20
    _secrets_absent(output)


def test_good_services_load_the_code_location(good_env):
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "greenstream_dagster.definitions"]
    result = subprocess.run(command, env=good_env, capture_output=True, text=True, timeout=120,
                            cwd=good_env["DAGSTER_HOME"])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


IMPORT = textwrap.dedent("""
    import importlib, multiprocessing, sys

    MODULE = "greenstream_dagster.definitions"
    if __name__ == "__main__":
        sys.argv = sys.argv[1:] or ["dagster"]
        if sys.argv[0] == "spawn":  # as the code server's run launcher and the multiprocess executor start them
            child = multiprocessing.get_context("spawn").Process(target=importlib.import_module, args=(MODULE,))
            child.start(); child.join()
            sys.exit(child.exitcode)
        try:
            importlib.import_module(MODULE)
        except Exception as error:
            print(error); sys.exit(3)
""")


def _import_definitions(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", IMPORT, *argv], env=env, capture_output=True, text=True, timeout=120)


def test_run_workers_leave_an_outage_to_the_retries(good_env):
    """A step worker started while PostgreSQL is down must still load: its step retries."""
    down = {**good_env, "GREENSTREAM_DATABASE_URL": f"postgresql://u:p@127.0.0.1:{_closed_port()}/db"}
    checked = _import_definitions(down, "dagster", "definitions", "validate")
    assert checked.returncode == 3 and checked.stdout.startswith("GREENSTREAM_DATABASE_URL: ")
    for worker in (["dagster", "api", "execute_run", "{}"], ["dagster", "api", "execute_step"],
                   ["dagster", "api", "resume_run", "{}"], ["spawn"]):
        loaded = _import_definitions(down, *worker)
        assert loaded.returncode == 0, (worker, loaded.stdout, loaded.stderr[-2000:])


def test_a_malformed_setting_fails_even_in_a_run_worker(good_env):
    loaded = _import_definitions({**good_env, "GREENSTREAM_MAX_KW": "nan"}, "dagster", "api", "execute_run", "{}")
    assert loaded.returncode == 3 and loaded.stdout.startswith("GREENSTREAM_MAX_KW: ")


def test_an_unusable_data_folder_names_its_setting(good_env, tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    env = {k: v for k, v in good_env.items() if k != "GREENSTREAM_S3_ENDPOINT_URL"}
    env["GREENSTREAM_DATA_DIR"] = str(in_the_way)
    result = subprocess.run([sys.executable, "-m", "greenstream_dagster.cli", "services"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("greenstream: configuration error: GREENSTREAM_DATA_DIR: the embedded S3 cannot keep")
    assert result.stderr.count("\n") == 1


def test_with_nothing_configured_importing_the_definitions_starts_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENSTREAM_", "AWS_"))}
    env["GREENSTREAM_DATA_DIR"] = str(tmp_path / "data")
    loaded = _import_definitions(env, "dagster", "definitions", "validate")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv, worker", [
    (["dagster", "api", "execute_run", "{}"], True),
    (["/venv/lib/python3.11/site-packages/dagster/__main__.py", "api", "execute_step"], True),
    (["dagster", "api", "grpc", "--lazy-load-user-code"], False),
    (["dagster", "asset", "materialize", "-m", "greenstream_dagster.definitions"], False),
    (["dagster", "code-server", "start"], False),
])
def test_which_processes_are_run_workers(argv, worker):
    assert is_run_worker(argv) is worker


@pytest.mark.parametrize("start, partition, words", [
    ("2030-01-01", "2024-04-16", "partition 2024-04-16 is before the partitions' start GREENSTREAM_PARTITIONS_START=2030-01-01"),
    ("2024-01-01", "2024-4-16", "partition '2024-4-16' is not a day YYYY-MM-DD"),
    ("2024-01-01", "2099-01-01", "partition 2099-01-01 is after today"),
])
def test_a_partition_outside_the_days_stops_materialize_with_one_line(good_env, start, partition, words):
    """SPEC §7: named in one line, not Dagster's two tracebacks of DagsterUnknownPartitionError."""
    env = {**good_env, "GREENSTREAM_PARTITIONS_START": start}
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "greenstream_dagster.definitions",
               "--select", "raw_readings", "--partition", partition]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=env["DAGSTER_HOME"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output and "DagsterUnknownPartitionError" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith("Error: GREENSTREAM_PARTITIONS_START: "), output[-3000:]
    assert words in errors[0]
