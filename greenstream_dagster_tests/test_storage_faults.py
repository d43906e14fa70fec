"""SPEC §6 with real faults on S3: the server stopped during a run → retries, then success once it
returns, nothing doubled; a lake write killed midway leaves the day old or new, never half."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.embedded_s3 import EmbeddedS3
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import lake
from greenstream_dagster.storage.s3 import make_s3_client
from greenstream_dagster.upload_command import upload_folder

DAY = datetime.now(timezone.utc).date() - timedelta(days=1)
METERS = 20


@pytest.fixture
def own_s3(tmp_path):
    """An S3 server of this test's own, so stopping it harms no other test."""
    server = EmbeddedS3(tmp_path / "s3")
    url = server.start()
    client = make_s3_client(url, embedded_s3.ACCESS_KEY_ID, embedded_s3.SECRET_ACCESS_KEY, embedded_s3.REGION)
    client.create_bucket(Bucket="faults")
    yield server, url, client
    server.stop()


def test_s3_back_during_the_retries_completes_the_run_without_duplicates(own_s3, database_url, monkeypatch, tmp_path):
    server, url, client = own_s3
    env = {"GREENSTREAM_S3_ENDPOINT_URL": url, "GREENSTREAM_BUCKET": "faults",
           "AWS_ACCESS_KEY_ID": embedded_s3.ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": embedded_s3.SECRET_ACCESS_KEY,
           "AWS_REGION": embedded_s3.REGION, "GREENSTREAM_DATABASE_URL": database_url,
           "GREENSTREAM_PARTITIONS_START": DAY.isoformat()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = GeneratorConfig(out=tmp_path / "sample", meters=METERS, days=1, start=DAY, seed=3,
                             rules=RulesConfig(partitions_start=DAY))
    generate(config)
    upload_folder(client, "faults", config.out / "raw-data")
    job = build_definitions(load_settings()).resolve_job_def("ingest_partition_job")
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(partition_key=DAY.isoformat(), instance=instance).success

        server.stop()
        restarted_server = EmbeddedS3(server.data_dir)
        timer = threading.Timer(2.0, restarted_server.start)
        timer.start()
        result = job.execute_in_process(partition_key=DAY.isoformat(), instance=instance, raise_on_error=False)
        timer.join()
        assert result.success
        retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert retries, "a step retried while S3 was down"
    with psycopg.connect(database_url) as conn:
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT (meter_id, reading_ts)) FROM meter_readings").fetchone()
    assert count == distinct == METERS * 96
    restarted = make_s3_client(url, embedded_s3.ACCESS_KEY_ID, embedded_s3.SECRET_ACCESS_KEY, embedded_s3.REGION)
    assert lake.read_lake_day(restarted, "faults", "meter_daily", DAY).height == METERS
    restarted_server.stop()


WRITER = textwrap.dedent("""
    import sys, polars as pl
    from datetime import date
    from greenstream_dagster.rules.schemas import LAKE_READING_COLUMNS
    from greenstream_dagster.services import embedded_s3
    from greenstream_dagster.storage.lake import write_lake_day
    from greenstream_dagster.storage.s3 import make_s3_client
    url, bucket, rows, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    n = pl.int_range(rows, eager=True)
    frame = pl.DataFrame({
        "meter_id": ("SM-" + (n % 50000).cast(pl.Utf8)),
        "reading_ts": pl.datetime_range(pl.datetime(2024, 4, 15, time_zone="UTC"), pl.datetime(2024, 4, 15, 23, 59, 59, time_zone="UTC"),
                                        interval="1s", eager=True).head(rows).sample(rows, with_replacement=True, seed=1),
    }).with_columns(
        pl.lit(date(2024, 4, 15)).alias("partition_date"), pl.lit(value).alias("value_raw"), pl.lit("W").alias("unit_raw"),
        (n.cast(pl.Float64) / 1000).alias("value_kw"), pl.lit("PEAK").alias("tariff_period"), pl.lit("SPRING").alias("season"),
        pl.lit([], dtype=pl.List(pl.Utf8)).alias("validation_errors"), pl.lit(False).alias("out_of_range"),
        pl.lit(False).alias("revised"), pl.lit(False).alias("is_spike"), pl.lit(False).alias("meter_stuck"),
        pl.lit(False).alias("meter_gap"), pl.lit(100, dtype=pl.Int32).alias("quality_score"), pl.lit("A").alias("quality_grade"),
        ("raw-data/2024-04-15/" + (n % 97).cast(pl.Utf8) + ".csv").alias("source_key"), (n + 2).alias("source_line"),
    ).select(list(LAKE_READING_COLUMNS))
    client = make_s3_client(url, embedded_s3.ACCESS_KEY_ID, embedded_s3.SECRET_ACCESS_KEY, embedded_s3.REGION)
    print("writing", flush=True)
    write_lake_day(client, bucket, "readings", date(2024, 4, 15), frame)
    print("written", flush=True)
""")


def test_a_lake_write_killed_midway_leaves_the_day_old_or_new_never_half(s3_endpoint_url, s3_client, bucket):
    day = datetime(2024, 4, 15).date()
    old = subprocess.run([sys.executable, "-c", WRITER, s3_endpoint_url, bucket, "1000", "old"], check=True,
                         capture_output=True, text=True)
    assert "written" in old.stdout
    for delay in (0.5, 1.5, 3.0):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, s3_endpoint_url, bucket, "3000000", "new"],
                                  stdout=subprocess.PIPE, text=True, preexec_fn=os.setsid)
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(delay)
        os.killpg(writer.pid, signal.SIGKILL)  # a run killed in the middle of its lake step
        writer.wait()
        day_frame = lake.read_lake_day(s3_client, bucket, "readings", day)
        values = set(day_frame["value_raw"].unique())
        assert values in ({"old"}, {"new"})
        assert day_frame.height == (1000 if values == {"old"} else 3_000_000)


def test_postgres_down_during_a_load_retries_in_one_line_each(tmp_path, s3_env, monkeypatch, capfd):
    """SPEC §6: the load rides out an outage; each retry is one line naming the cause
    (GREENSTREAM_DATABASE_URL …), not a stack trace, and the run succeeds."""
    from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
    from greenstream_dagster.storage.operational.migrate import apply_migrations
    from greenstream_dagster.storage.operational.server_wait import SERVER_WAIT_SECONDS
    from greenstream_dagster_tests.fixtures_postgres import server_folder

    with server_folder() as folder:
        with socket.socket() as probe:  # a fixed port: the restarted server must be where the URL says
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = EmbeddedPostgres(folder / "postgres", port=port)
        url = server.start()
        try:
            apply_migrations(url)
            for name, value in {**s3_env, "GREENSTREAM_DATABASE_URL": url,
                                "GREENSTREAM_PARTITIONS_START": DAY.isoformat()}.items():
                monkeypatch.setenv(name, value)
            config = GeneratorConfig(out=tmp_path / "sample", meters=METERS, days=1, start=DAY, seed=5,
                                     rules=RulesConfig(partitions_start=DAY))
            generate(config)
            client = make_s3_client(s3_env["GREENSTREAM_S3_ENDPOINT_URL"], s3_env["AWS_ACCESS_KEY_ID"],
                                    s3_env["AWS_SECRET_ACCESS_KEY"], s3_env["AWS_REGION"])
            upload_folder(client, s3_env["GREENSTREAM_BUCKET"], config.out / "raw-data")
            defs = build_definitions(load_settings())
            with dg.instance_for_test() as instance:
                upstream = defs.resolve_implicit_global_asset_job_def()
                selection = [dg.AssetKey(k) for k in ("raw_readings", "standardized_readings", "scored_readings")]
                assert upstream.execute_in_process(partition_key=DAY.isoformat(), instance=instance,
                                                   asset_selection=selection).success
                capfd.readouterr()

                server.stop()  # longer than an attempt waits for the server (SERVER_WAIT_SECONDS)
                timer = threading.Timer(SERVER_WAIT_SECONDS + 4, server.start)
                timer.start()
                result = upstream.execute_in_process(partition_key=DAY.isoformat(), instance=instance,
                                                     asset_selection=[dg.AssetKey("meter_readings")],
                                                     raise_on_error=False)
                timer.join()
                log = capfd.readouterr().err
            assert result.success
            retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
            assert 1 <= len(retries) <= 3, log[-4000:]
            ours = [line for line in log.splitlines() if "failed, retry" in line]
            assert len(ours) == len(retries), log[-3000:]
            for number, line in enumerate(ours, start=1):
                assert f"meter_readings: attempt {number} failed, retry {number} of 3 in {2 ** number} s: " in line
                assert "GREENSTREAM_DATABASE_URL" in line and "127.0.0.1" in line
            assert "Traceback" not in log and "Stack Trace" not in log and 'File "' not in log, log[-3000:]
            dagster_lines = [line for line in log.splitlines() if "STEP_UP_FOR_RETRY" in line]
            assert len(dagster_lines) == len(retries)
            # The UI shows the events' errors: the same one line each.
            assert [e.event_specific_data.error.to_string() for e in retries] == [line.strip() for line in ours]
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM meter_readings").fetchone()[0] == METERS * 96
        finally:
            server.stop()
