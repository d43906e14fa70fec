"""An identical re-run is a non-event (SPEC §5: identical input changes zero rows), in every store.

A loaded day with dead letters, quarantined rows and revisions is materialized again with
the same landing files. PostgreSQL's own counters (`pg_stat_user_tables`: tuples inserted,
updated, deleted) say whether any project table was written; S3's ETags say whether any
object of the day's lake or dead-letter copies was rewritten.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.lake import LAKE_PREFIX
from greenstream_dagster.storage.landing import DEAD_LETTER_PREFIX
from greenstream_dagster.storage.operational.adbc_connections import close_idle
from greenstream_dagster.upload_command import upload_folder

TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(days=3)
DAYS = [START + timedelta(days=k) for k in range(3)]
INGEST_JOB = "ingest_partition_job"
LAKE_TABLES = ("readings", "meter_daily", "silent_meters", "estimated")  # every lake table an ingest run writes


@pytest.fixture
def loaded(point_platform, s3_env, s3_client, database_url, monkeypatch, tmp_path):
    """Three generated days (bad files and rows of every kind) uploaded and materialized once."""
    point_platform(START)
    config = with_preset(
        GeneratorConfig(out=tmp_path / "sample", meters=60, days=len(DAYS), start=START, seed=23,
                        rules=RulesConfig(partitions_start=START)),
        "default",
    )
    manifest = generate(config)
    upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], config.out / "raw-data")
    with dg.instance_for_test() as instance:
        job = build_definitions(load_settings()).resolve_job_def(INGEST_JOB)
        for day in DAYS:
            assert job.execute_in_process(partition_key=day.isoformat(), instance=instance).success
        yield job, instance, manifest


def table_writes(database_url: str) -> dict[str, tuple[int, int, int]]:
    """Tuples inserted, updated and deleted so far, per table of the project's schema."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {name: (ins, upd, dele) for name, ins, upd, dele in rows}


def settled_writes(database_url: str) -> dict[str, tuple[int, int, int]]:
    """Counters once the servers' backends have reported (PostgreSQL flushes them at session end
    or some seconds after idling): the run's kept ADBC sessions are closed first."""
    close_idle()
    previous = table_writes(database_url)
    for _ in range(20):
        time.sleep(0.6)
        current = table_writes(database_url)
        if current == previous:
            return current
        previous = current
    return previous


def etags(client, bucket: str, prefixes: list[str]) -> dict[str, tuple]:
    """Each object's ETag and last-modified time: the same bytes written again keep the ETag only."""
    found = {}
    for prefix in prefixes:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({item["Key"]: (item["ETag"], item["LastModified"]) for item in page.get("Contents", [])})
    return found


def lake_prefixes(day) -> list[str]:
    return [f"{LAKE_PREFIX}{table}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}/"
            for table in LAKE_TABLES]


def test_an_identical_rerun_writes_no_table_and_no_object(loaded, database_url, s3_client, s3_env):
    job, instance, manifest = loaded
    bucket = s3_env["GREENSTREAM_BUCKET"]
    by_day = {e.date: e for e in manifest.expected}
    day = next(d for d in DAYS if by_day[d.isoformat()].dead_letter_files and by_day[d.isoformat()].revisions)
    expected = by_day[day.isoformat()]
    assert sum(expected.quarantined.values()) > 0, "the day has quarantined rows"

    prefixes = [*lake_prefixes(day), DEAD_LETTER_PREFIX]
    objects_before = etags(s3_client, bucket, prefixes)
    assert any(k.startswith(DEAD_LETTER_PREFIX) for k in objects_before)
    assert sum(k.startswith(LAKE_PREFIX) for k in objects_before) == len(LAKE_TABLES)
    writes_before = settled_writes(database_url)
    assert writes_before[f"dead_letter_files_p{day:%Y%m%d}"][0] > 0

    assert job.execute_in_process(partition_key=day.isoformat(), instance=instance).success

    writes_after = settled_writes(database_url)
    changed = {name: (writes_before.get(name), counts) for name, counts in writes_after.items()
               if writes_before.get(name) != counts}
    assert changed == {}
    assert etags(s3_client, bucket, prefixes) == objects_before


def test_a_changed_day_still_writes_what_changed(loaded, database_url, s3_client, s3_env):
    """The counters and ETags above do move when the input changes: the check can fail."""
    job, instance, _ = loaded
    bucket = s3_env["GREENSTREAM_BUCKET"]
    day = DAYS[1]
    objects_before = etags(s3_client, bucket, lake_prefixes(day))
    writes_before = settled_writes(database_url)
    s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day}/late/late.csv",
                         Body=f"meter_id,timestamp,value,unit\nSM-999999,{day}T12:00:00Z,1234,W\n".encode())

    assert job.execute_in_process(partition_key=day.isoformat(), instance=instance).success

    writes_after = settled_writes(database_url)
    readings_partition = f"meter_readings_p{day:%Y%m%d}"
    assert writes_after[readings_partition][0] == writes_before[readings_partition][0] + 1
    after = etags(s3_client, bucket, lake_prefixes(day))
    changed = {k for k in after if after[k] != objects_before.get(k)}
    assert any("/readings/" in k for k in changed) and any("/meter_daily/" in k for k in changed)
