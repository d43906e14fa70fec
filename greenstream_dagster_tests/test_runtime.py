"""Resolving the services (SPEC §7): configured ones are checked, unset ones are embedded."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import ConfigurationError, load_settings
from greenstream_dagster.storage.s3 import s3_client

pytestmark = pytest.mark.services


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_an_unreachable_configured_endpoint_names_the_setting(tmp_path):
    settings = load_settings({
        "GREENSTREAM_S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "AWS_ACCESS_KEY_ID": "someone", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        "GREENSTREAM_DATA_DIR": str(tmp_path),
    })
    with pytest.raises(ConfigurationError) as error:
        resolve_services(settings, database=False)
    assert error.value.setting == "GREENSTREAM_S3_ENDPOINT_URL"
    assert "s3cr3t-value" not in str(error.value)
    assert not (tmp_path / "s3").exists()  # nothing embedded was started instead


def test_an_unknown_access_key_names_aws_access_key_id(s3_env):
    settings = load_settings({**s3_env, "AWS_ACCESS_KEY_ID": "nobody"})
    with pytest.raises(ConfigurationError) as error:
        resolve_services(settings, database=False)
    assert error.value.setting == "AWS_ACCESS_KEY_ID"


def test_a_wrong_secret_names_the_secret_setting_but_not_its_value(s3_env):
    settings = load_settings({**s3_env, "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"})
    with pytest.raises(ConfigurationError) as error:
        resolve_services(settings, database=False)
    assert error.value.setting == "AWS_SECRET_ACCESS_KEY"
    assert "wrong-secret-value" not in str(error.value)


def test_a_configured_endpoint_is_used_as_is(s3_env):
    with resolve_services(load_settings(s3_env), database=False) as services:
        assert services.embedded == ()
        assert services.s3_endpoint_url == s3_env["GREENSTREAM_S3_ENDPOINT_URL"]
        assert services.environment() == s3_env


def test_a_missing_bucket_on_a_configured_endpoint_names_the_bucket_and_is_not_created(s3_env, s3_client):
    s3_client.delete_bucket(Bucket=s3_env["GREENSTREAM_BUCKET"])
    with pytest.raises(ConfigurationError) as error:
        resolve_services(load_settings(s3_env), database=False)
    assert error.value.setting == "GREENSTREAM_BUCKET"
    assert s3_env["GREENSTREAM_BUCKET"] in str(error.value)
    names = {b["Name"] for b in s3_client.list_buckets()["Buckets"]}
    assert s3_env["GREENSTREAM_BUCKET"] not in names
    s3_client.create_bucket(Bucket=s3_env["GREENSTREAM_BUCKET"])  # for the fixture's clean-up


def test_an_unreachable_database_names_the_setting_and_hides_the_password():
    url = f"postgresql://greenstream:pg-pa55word@127.0.0.1:{_closed_port()}/greenstream"
    settings = load_settings({"GREENSTREAM_DATABASE_URL": url})
    with pytest.raises(ConfigurationError) as error:
        resolve_services(settings, s3=False)
    assert error.value.setting == "GREENSTREAM_DATABASE_URL"
    assert "pg-pa55word" not in str(error.value)
    assert f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}" in str(error.value)


@pytest.fixture
def data_dir():
    """A data folder outside pytest's basetemp: every pytest session resets
    /tmp/pytest-of-<user> to mode 0700, which would lock out the embedded
    PostgreSQL's service user (as root) when another session starts meanwhile."""
    path = Path(tempfile.mkdtemp(prefix="greenstream-runtime-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unset_services_are_embedded_under_the_data_folder_and_stopped_on_close(data_dir):
    tmp_path = data_dir
    settings = load_settings({"GREENSTREAM_DATA_DIR": str(tmp_path), "GREENSTREAM_BUCKET": "landing"})
    services = resolve_services(settings)
    try:
        assert services.embedded == ("s3", "database")
        assert services.s3_endpoint_url.startswith("http://127.0.0.1:")
        assert services.aws_access_key_id == embedded_s3.ACCESS_KEY_ID
        assert (tmp_path / "s3" / "weed.log").exists() and (tmp_path / "postgres").is_dir()
        s3_client(services).head_bucket(Bucket="landing")
        with psycopg.connect(services.database_url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        env = services.environment()
        assert set(env) == {
            "GREENSTREAM_S3_ENDPOINT_URL", "GREENSTREAM_BUCKET", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "GREENSTREAM_DATABASE_URL",
        }
        assert services.database_url not in repr(services)
    finally:
        services.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(services.database_url, connect_timeout=2)
    assert not (tmp_path / "s3" / "weed.pid").exists()


def test_the_services_command_runs_until_sigterm_and_never_prints_a_password(data_dir, s3_env):
    env = {**os.environ, **s3_env, "GREENSTREAM_DATA_DIR": str(data_dir)}
    env.pop("GREENSTREAM_DATABASE_URL", None)
    command = [sys.executable, "-c", "import sys; from greenstream_dagster.cli import main; sys.exit(main())", "services"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    printed = "".join(lines) + rest
    assert process.returncode == 0, printed
    env_file = data_dir / "services.env"
    password = (data_dir / "postgres" / "password").read_text().strip()
    assert password not in printed and password in env_file.read_text()
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert "PostgreSQL (embedded)" in printed and "S3 (configured)" in printed
    assert f"# GREENSTREAM_DATABASE_URL: secret, see {env_file}" in printed
    assert "export GREENSTREAM_S3_ENDPOINT_URL" not in printed  # this shell already has it
    assert "Stopping" in printed
