"""SPEC §6 with real faults: PostgreSQL stopped during a run → retries, then success once it
returns; kept down → the partition ends in the dead letters, and a `replay_dead_letters`
request makes the replay sensor ask for one queued ingest run per open day; its success
closes the dead letters, with nothing lost or doubled.

The same with the real daemon and the deployed instance: test_outages_as_deployed.py."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.operational.dead_letters import list_open_dead_letters
from greenstream_dagster.storage.operational.migrate import apply_migrations
from greenstream_dagster.upload_command import upload_folder

DAY = datetime.now(timezone.utc).date() - timedelta(days=1)
METERS = 20


@pytest.fixture
def own_postgres(postgres_folder):
    """A PostgreSQL server of this test's own, so stopping it harms no other test."""
    server = EmbeddedPostgres(postgres_folder)
    url = server.start()
    apply_migrations(url)
    yield server, url
    for restarted in RESTARTED:  # the servers started again mid-test stop before their folder goes
        restarted.stop()
    RESTARTED.clear()
    server.stop()


@pytest.fixture
def platform(s3_env, own_postgres, s3_client, monkeypatch, tmp_path):
    server, url = own_postgres
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GREENSTREAM_DATABASE_URL", url)
    monkeypatch.setenv("GREENSTREAM_PARTITIONS_START", DAY.isoformat())
    config = GeneratorConfig(out=tmp_path / "sample", meters=METERS, days=1, start=DAY, seed=5,
                             rules=RulesConfig(partitions_start=DAY))
    generate(config)
    upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], config.out / "raw-data")
    with dg.instance_for_test() as instance:
        yield build_definitions(load_settings()), instance, server, url


def readings(url) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM meter_readings WHERE partition_date = %s", (DAY,)).fetchone()[0]


RESTARTED: list[EmbeddedPostgres] = []


def restart(server: EmbeddedPostgres, url: str) -> None:
    restarted = EmbeddedPostgres(server.data_dir, port=urlsplit(url).port)
    restarted.start()
    RESTARTED.append(restarted)


def test_postgres_back_during_the_retries_completes_the_load_without_duplicates(platform):
    defs, instance, server, url = platform
    job = defs.resolve_job_def("ingest_partition_job")
    assert job.execute_in_process(partition_key=DAY.isoformat(), instance=instance).success
    assert readings(url) == METERS * 96

    server.stop()
    # PostgreSQL returns after 15 s: longer than one attempt waits for it (10 s), so the load retries.
    timer = threading.Timer(15.0, restart, args=(server, url))
    timer.start()
    result = job.execute_in_process(partition_key=DAY.isoformat(), instance=instance, raise_on_error=False,
                                    asset_selection=[dg.AssetKey("meter_readings")])
    timer.join()
    assert result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "the load retried while PostgreSQL was down"
    assert readings(url) == METERS * 96


# Each attempt waits out the server for 10 s by default; kept down for good, that only makes the test slow.
SHORT_WAIT = {"resources": {"operational": {"config": {"server_wait_seconds": 1.0}}}}


def test_postgres_kept_down_dead_letters_the_partition_and_replay_completes_it(platform):
    defs, instance, server, url = platform
    job = defs.resolve_job_def("ingest_partition_job")
    server.stop()
    started = time.monotonic()
    failed = job.execute_in_process(partition_key=DAY.isoformat(), instance=instance, raise_on_error=False,
                                    run_config=SHORT_WAIT)
    assert not failed.success
    assert time.monotonic() - started >= 2 + 4 + 8  # three retries with the spec's backoff

    restart(server, url)
    operational = defs.get_repository_def().get_top_level_resources()["operational"]
    sensor = defs.get_sensor_def("dead_letter_sensor")
    context = dg.build_run_status_sensor_context(
        sensor_name="dead_letter_sensor", dagster_instance=instance,
        dagster_run=failed.dagster_run, dagster_event=failed.get_run_failure_event(),
        resources={"operational": operational},
    ).for_run_failure()
    sensor(context)
    open_letters = list_open_dead_letters(url, kind="partition")
    # One letter per failed step (the load and the fleet's registry both need PostgreSQL), all of this run.
    assert {(d.partition_date, d.run_id) for d in open_letters} == {(DAY, failed.run_id)}
    assert readings(url) == 0

    replay_sensor = defs.get_sensor_def("replay_dead_letters_sensor")
    with dg.build_sensor_context(instance=instance, resources={"operational": operational}) as context:
        assert replay_sensor(context).skip_message  # nobody asked yet: nothing replays on its own
    ask = defs.resolve_job_def("replay_dead_letters").execute_in_process(instance=instance)
    assert ask.success
    with dg.build_sensor_context(instance=instance, resources={"operational": operational}) as context:
        result = replay_sensor(context)
        cursor = result.cursor
    [request] = result.run_requests
    assert request.partition_key == DAY.isoformat()
    assert set(request.tags["greenstream/replay_of"].split(",")) == {str(d.dead_letter_id) for d in open_letters}
    with dg.build_sensor_context(instance=instance, cursor=cursor,
                                 resources={"operational": operational}) as context:
        assert replay_sensor(context).skip_message  # one ask, one replay

    # The run the daemon would launch from the queue, executed here with the request's tags.
    replayed = job.execute_in_process(partition_key=request.partition_key, tags=request.tags, instance=instance)
    assert replayed.success and readings(url) == METERS * 96
    closing = defs.get_sensor_def("replay_closing_sensor")
    success_event = next(e for e in replayed.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
    closing(dg.build_run_status_sensor_context(
        sensor_name="replay_closing_sensor", dagster_instance=instance, dagster_run=replayed.dagster_run,
        dagster_event=success_event, resources={"operational": operational},
    ))
    assert list_open_dead_letters(url, kind="partition") == []
