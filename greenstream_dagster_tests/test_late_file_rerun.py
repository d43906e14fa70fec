"""A day re-run after one small late file (issue: work proportional to what arrived):
the files already read are not parsed again, PostgreSQL receives only the readings
that changed, and the stores end exactly as a cold run of the same files leaves them.

Real embedded S3 and PostgreSQL, real Dagster runs. The readings that changed are
counted from PostgreSQL itself (every row's content before and after), not from the
platform's report.
"""

from __future__ import annotations

import gzip
import uuid
from contextlib import contextmanager

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.rules.removed_objects import ACCEPT_REMOVAL_TAG
from greenstream_dagster.storage import lake
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster.storage.staging import layer_key, staging_key
from greenstream_dagster_tests.builders import HEADER, day_csv
from greenstream_dagster_tests.fixtures_postgres import with_database
from greenstream_dagster_tests.fixtures_s3 import delete_bucket
from greenstream_dagster_tests.test_live_days import DAY1, WAVE, Platform, platform  # noqa: F401
from greenstream_dagster_tests.test_meter_delta import same

CONTENT = ("meter_id, reading_ts, record_id, value_raw, unit_raw, value_kw, tariff_period, season, "
           "validation_errors, out_of_range, revised, is_spike, meter_stuck, meter_gap, quality_score, "
           "quality_grade, source_key, source_line")
FILES = {  # three head-ends of ten meters each
    f"raw-data/{DAY1}/head-end-{k}.csv": HEADER + "".join(day_csv(f"SM-{10 * k + m}", DAY1, WAVE) for m in range(10))
    for k in range(3)
}
LATE = (f"raw-data/{DAY1}/late/z-corrections.csv",  # after the others in delivery order (SPEC §2)
        HEADER + day_csv("SM-5", DAY1, [2.5] * 8, start_slot=40) + day_csv("SM-99", DAY1, [0.7] * 4))


def readings(database_url: str) -> dict[tuple, tuple]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT {CONTENT}, xmin::text FROM meter_readings WHERE partition_date = %s",
                            (DAY1,)).fetchall()
    return {row[:2]: row[2:] for row in rows}


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [materialization] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


def land_and_run(platform, s3_client) -> None:  # noqa: F811
    """The day's three head-end files land and the day runs once."""
    for key, text in FILES.items():
        put_object(s3_client, platform.bucket, key, text.encode())
    assert platform.materialize(DAY1).success


def staged_etags(s3_client, bucket: str) -> dict[str, str]:
    """ETags of the standardized and scored frames of the day in staging."""
    etags = {}
    for asset in ("standardized_readings", "scored_readings"):
        listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"staging/{asset}/date={DAY1}/")
        etags |= {item["Key"]: item["ETag"] for item in listing.get("Contents", [])}
    return etags


def lake_day(s3_client, bucket: str):
    return {t: lake.read_lake_day(s3_client, bucket, t, DAY1).sort(lake._SORT_KEYS[t])
            for t in ("readings", "meter_daily")}


@pytest.mark.timeout(600)
def test_a_late_file_is_the_only_one_parsed_and_only_changed_readings_reach_postgres(
        platform, s3_client, postgres_server, monkeypatch):  # noqa: F811
    land_and_run(platform, s3_client)
    before = readings(platform.database_url)
    large = [("raw_readings", "rows"), ("standardized_readings", "readings"), ("scored_readings", "readings")]
    bases = {key: s3_client.head_object(Bucket=platform.bucket, Key=staging_key(*key[:1], DAY1, key[1]))["ETag"]
             for key in large}

    put_object(s3_client, platform.bucket, LATE[0], LATE[1].encode())
    again = platform.materialize(DAY1)
    assert again.success
    after = readings(platform.database_url)
    for asset, name in large:  # the day's large frames are not written again: a layer holds what changed
        base = s3_client.head_object(Bucket=platform.bucket, Key=staging_key(asset, DAY1, name))["ETag"]
        assert base == bases[(asset, name)], asset
        assert s3_client.head_object(Bucket=platform.bucket, Key=layer_key(asset, DAY1, name))["ContentLength"] > 0

    raw = metadata(again, "raw_readings")
    assert (raw["files_parsed"], raw["files_reused"], raw["files"]) == (1, 3, 4)
    for asset in ("standardized_readings", "scored_readings"):  # the late file's two meters, of 31
        assert (metadata(again, asset)["redone"], metadata(again, asset)["meters_redone"]) == ("changed meters only", 2)
    changed = {k for k, row in after.items() if k not in before or before[k][:-1] != row[:-1]}
    assert {k[0] for k in changed} >= {"SM-5", "SM-99"}  # SM-5's eight corrections, SM-99's four readings
    assert len(changed) < len(after) / 4
    load = metadata(again, "meter_readings")
    assert load["readings_copied"] == len(changed)  # nothing else was sent
    assert (load["inserted"] + load["updated"], load["deleted"]) == (len(changed), 0)
    rewritten = {k for k in before if k in after and before[k][-1] != after[k][-1]}
    assert rewritten == changed - {k for k in after if k not in before}  # untouched rows keep their version

    assert_a_cold_run_agrees(platform, [*FILES.items(), LATE], s3_client, postgres_server, monkeypatch)


def assert_a_cold_run_agrees(platform, files, s3_client, postgres_server, monkeypatch) -> None:  # noqa: F811
    """The same files, delivered in the same order, into fresh stores and run once: PostgreSQL
    and the lake hold exactly what the warm platform holds (loaded_at and row versions aside;
    a meter's daily float statistics to 1e-12, see test_meter_delta)."""
    with cold_stores(s3_client, postgres_server) as (cold_bucket, cold_url):
        for key, text in files:
            put_object(s3_client, cold_bucket, key, text.encode())
        monkeypatch.setenv("GREENSTREAM_BUCKET", cold_bucket)
        monkeypatch.setenv("GREENSTREAM_DATABASE_URL", cold_url)
        with dg.instance_for_test() as instance:
            assert Platform(cold_bucket, cold_url, instance).materialize(DAY1).success
        warm = {k: v[:-1] for k, v in readings(platform.database_url).items()}
        assert {k: v[:-1] for k, v in readings(cold_url).items()} == warm
        warm_lake, cold_lake = lake_day(s3_client, platform.bucket), lake_day(s3_client, cold_bucket)
        assert warm_lake["readings"].equals(cold_lake["readings"])
        assert same(warm_lake["meter_daily"], cold_lake["meter_daily"], ["meter_id"])


@contextmanager
def cold_stores(s3_client, postgres_server):
    """A bucket and a database of their own, removed afterwards."""
    bucket, database = f"test-{uuid.uuid4().hex[:16]}", f"test_{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield bucket, with_database(postgres_server, database)
    finally:
        delete_bucket(s3_client, bucket)
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_nothing_new_sends_nothing_to_postgres(platform, s3_client):  # noqa: F811
    land_and_run(platform, s3_client)
    staged = staged_etags(s3_client, platform.bucket)
    again = platform.materialize(DAY1)
    assert staged_etags(s3_client, platform.bucket) == staged  # the same frames: not written again
    load = metadata(again, "meter_readings")
    assert (load["readings_copied"], load["inserted"], load["updated"], load["deleted"]) == (0, 0, 0, 0)
    assert metadata(again, "raw_readings")["files_parsed"] == 0
    for asset in ("standardized_readings", "scored_readings"):
        assert metadata(again, asset)["meters_redone"] == 0


@pytest.mark.timeout(600)
def test_a_removed_and_a_replaced_object_redo_their_meters_and_equal_a_cold_run(
        platform, s3_client, postgres_server, monkeypatch):  # noqa: F811
    land_and_run(platform, s3_client)
    removed, replaced = list(FILES)[1], list(FILES)[2]
    s3_client.delete_object(Bucket=platform.bucket, Key=removed)
    corrected = HEADER + day_csv("SM-20", DAY1, [1.5] * 96) + day_csv("SM-21", DAY1, WAVE)  # SM-22..29 dropped
    put_object(s3_client, platform.bucket, replaced, corrected.encode())
    again = platform.materialize(DAY1, tags={ACCEPT_REMOVAL_TAG: "true"})
    assert again.success
    for asset in ("standardized_readings", "scored_readings"):  # ten meters gone, ten replaced
        assert metadata(again, asset)["meters_redone"] == 20
    assert metadata(again, "meter_readings")["deleted"] == 18 * 96

    assert {k[0] for k in readings(platform.database_url)} == {f"SM-{m}" for m in [*range(10), 20, 21]}
    first = list(FILES)[0]
    assert_a_cold_run_agrees(platform, [(first, FILES[first]), (replaced, corrected)],
                             s3_client, postgres_server, monkeypatch)


def test_a_hostile_late_file_is_dead_lettered_and_the_re_run_keeps_the_day(platform, s3_client):  # noqa: F811
    """A late object that is not a CSV (gzip bytes under .csv, cut short) goes to the dead letter
    store with its reason; the day's run succeeds, and nothing stored changes."""
    land_and_run(platform, s3_client)
    before = readings(platform.database_url)
    hostile = f"raw-data/{DAY1}/late/broken.csv.gz"
    put_object(s3_client, platform.bucket, hostile, gzip.compress(LATE[1].encode(), mtime=0)[:-12])
    again = platform.materialize(DAY1)
    assert again.success
    raw = metadata(again, "raw_readings")
    assert (raw["files_parsed"], raw["dead_lettered_files"]) == (1, 1)
    assert "corrupt gzip" in raw["dead_letters"]
    [(reason,)] = platform.query("SELECT reason FROM dead_letter_files WHERE source_key = %s", hostile)
    assert "corrupt gzip" in reason
    for asset in ("standardized_readings", "scored_readings"):  # a dead letter changes no meter
        assert metadata(again, asset)["meters_redone"] == 0
    assert {k: v[:-1] for k, v in readings(platform.database_url).items()} == {k: v[:-1] for k, v in before.items()}
