"""Results do not depend on the split (SPEC §10), through the platform as deployed.

Three generated days (bad files and rows of every kind, revisions, short gaps) are
ingested in one shard (twice: the second pass sees the registry the later passes
see); then the shard count changes and every day is ingested
again. The day is computed afresh in the new shards (their staged frames are
new), yet PostgreSQL's counters show no row written but the day's load record
(which names the digest, now kept per shard) and S3's ETags show no lake object
rewritten: the shards' results are the one shard's, to the byte. Run again in
the same shards, each shard's load finds its digest unchanged and sends nothing.
The day's checks (over all shards) and its counts agree too. A late file of one
meter then lands: only its shard is redone, and going back to one shard again
writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from greenstream_dagster.asset_names import RAW, SCORED, STANDARDIZED
from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.meter_shards import Shard, meter_shard
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import staging
from greenstream_dagster.storage.landing import DEAD_LETTER_PREFIX
from greenstream_dagster.upload_command import upload_folder
from greenstream_dagster_tests.test_quiet_reruns import etags, lake_prefixes, settled_writes

TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(days=3)
DAYS = [START + timedelta(days=k) for k in range(3)]
INGEST_JOB = "ingest_partition_job"
# Metadata that says how the work was done, not what came out of it.
HOW = ("seconds_", "rows_per_second", "process_peak_rss_mb", "shards", "redone", "meters_redone",
       "files_parsed", "files_reused", "parse_batches", "readings_copied", "key", "lake_key", "estimated_key", "bytes",
       "size_ratio_to_csv", "inserted", "updated", "unchanged", "deleted", "estimates_", "rows_changed",
       "presence_rows_changed", "registry_rows_changed", "new_meters")


def _outcome(result) -> tuple[dict, dict]:
    """What a run computed: each check's verdict and numbers, each asset's counts."""
    checks = {(str(e.asset_check_key.asset_key.to_user_string()), e.asset_check_key.name):
              (e.passed, {k: v.value for k, v in e.metadata.items()}) for e in result.get_asset_check_evaluations()}
    counts = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        counts[materialization.asset_key.to_user_string()] = {
            k: v.value for k, v in materialization.metadata.items() if not k.startswith(HOW)}
    return checks, counts


def _differences(outcomes: dict, expected: dict) -> list:
    """Each (day, asset or check, name) whose value differs from the expected run's."""
    found = []
    for day, (checks, counts) in outcomes.items():
        for kind, got, want in (("check", checks, expected[day][0]), ("asset", counts, expected[day][1])):
            for key in set(got) | set(want):
                if got.get(key) != want.get(key):
                    found.append((day.isoformat(), kind, key, got.get(key), want.get(key)))
    return found


@pytest.fixture
def platform(point_platform, s3_env, s3_client, tmp_path):
    point_platform(START, GREENSTREAM_SHARDS="1")
    config = with_preset(
        GeneratorConfig(out=tmp_path / "sample", meters=70, days=len(DAYS), start=START, seed=31,
                        rules=RulesConfig(partitions_start=START)),
        "default",
    )
    generate(config)
    upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], config.out / "raw-data")
    with dg.instance_for_test() as instance:
        yield build_definitions(load_settings()).resolve_job_def(INGEST_JOB), instance


def _ingest(job, instance) -> dict:
    outcomes = {}
    for day in DAYS:
        result = job.execute_in_process(partition_key=day.isoformat(), instance=instance)
        assert result.success
        outcomes[day] = _outcome(result)
    return outcomes


def test_any_shard_count_gives_the_stores_and_checks_of_one_shard(platform, monkeypatch, database_url, s3_client,
                                                                  s3_env):
    job, instance = platform
    bucket = s3_env["GREENSTREAM_BUCKET"]
    _ingest(job, instance)
    one_shard = _ingest(job, instance)  # as the later runs see the fleet: every day's meters registered
    prefixes = [p for day in DAYS for p in lake_prefixes(day)] + [DEAD_LETTER_PREFIX]
    objects = etags(s3_client, bucket, prefixes)
    writes = settled_writes(database_url)

    # Set outright; then as the fleet needs (70 meters, 20 a shard) with every file parsed again
    # (another line limit, which cannot change these rows, invalidates the previous read) in
    # batches of a few files, so that the first batch's guess of the count is checked too.
    splits = [(3, {"GREENSTREAM_SHARDS": "3"}), (7, {"GREENSTREAM_SHARDS": "7"}),
              (4, {"GREENSTREAM_SHARDS": "0", "GREENSTREAM_METERS_PER_SHARD": "20",
                   "GREENSTREAM_PARSE_BATCH_BYTES": "40000", "GREENSTREAM_MAX_LINE_BYTES": "2097152"})]
    for count, env in splits:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sharded = _ingest(job, instance)
        assert not staging_pieces(s3_client, bucket)
        raw = instance.get_latest_materialization_event(dg.AssetKey(RAW)).asset_materialization
        assert (raw.metadata["parse_batches"].value > 1) == ("GREENSTREAM_PARSE_BATCH_BYTES" in env)
        for day in DAYS:
            for asset in (RAW, STANDARDIZED, SCORED):
                assert staging.layout(s3_client, bucket, asset, day) == count
        assert _differences(sharded, one_shard) == []
        # Only the day's load record: it names the digest now kept in the new shards (the old one,
        # in another number of parts, is not compared part by part; PostgreSQL compared instead).
        rewritten = {k: v for k, v in settled_writes(database_url).items() if writes.get(k) != v}
        assert set(rewritten) == {"day_loads"}, rewritten
        writes = settled_writes(database_url)
        # Again in the same shards: each shard's load compares with its shard's digest and sends nothing.
        copied = {}
        for day in DAYS:
            result = job.execute_in_process(partition_key=day.isoformat(), instance=instance)
            assert result.success
            load = next(e.step_materialization_data.materialization for e in result.get_asset_materialization_events()
                        if e.step_materialization_data.materialization.asset_key.to_user_string() == "meter_readings")
            copied[day] = (load.metadata["readings_copied"].value, load.metadata["shards"].value)
        assert copied == dict.fromkeys(DAYS, (0, count))
        assert settled_writes(database_url) == writes
        assert etags(s3_client, bucket, prefixes) == objects, count


def staging_pieces(s3_client, bucket: str) -> list[str]:
    """Parse batches' pieces left in staging (a read removes them once its shards are staged)."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="staging/raw_readings/")
    return [item["Key"] for page in pages for item in page.get("Contents", []) if "/parsed/" in item["Key"]]


def test_a_late_file_of_one_meter_redoes_its_shard_only(platform, monkeypatch, database_url, s3_client, s3_env):
    job, instance = platform
    bucket = s3_env["GREENSTREAM_BUCKET"]
    monkeypatch.setenv("GREENSTREAM_SHARDS", "4")
    _ingest(job, instance)
    day = DAYS[1]
    readings = staging.read_frame(s3_client, bucket, SCORED, day, "readings", columns=["meter_id"])
    meter = readings["meter_id"][0]
    shard = Shard(int(readings.head(1).select(meter_shard(4)).item()), 4)
    untouched = [Shard(k, 4) for k in range(4) if k != shard.index]
    before = {s: etags(s3_client, bucket, [staging.staging_key(SCORED, day, staging.shard_frame("", s))[:-len(".parquet")]])
              for s in untouched}
    s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day}/late/one-meter.csv",
                         Body=f"meter_id,timestamp,value,unit\n{meter},{day}T12:07:00Z,1234,W\n".encode())

    result = job.execute_in_process(partition_key=day.isoformat(), instance=instance)

    assert result.success
    steps = {e.step_key: e for e in result.get_asset_materialization_events()}
    scored = next(e for k, e in steps.items() if k.startswith(SCORED)).step_materialization_data.materialization
    assert scored.metadata["meters_redone"].value == 1
    for other in untouched:  # their frames stayed as staged: nothing of theirs was redone
        prefix = staging.staging_key(SCORED, day, staging.shard_frame("", other))[:-len(".parquet")]
        assert etags(s3_client, bucket, [prefix]) == before[other]

    writes = settled_writes(database_url)
    monkeypatch.setenv("GREENSTREAM_SHARDS", "1")
    back = job.execute_in_process(partition_key=day.isoformat(), instance=instance)
    assert back.success
    assert staging.layout(s3_client, bucket, SCORED, day) == 1
    # Nothing but the load record, which names the digest now kept in one part.
    assert set(k for k, v in settled_writes(database_url).items() if writes.get(k) != v) == {"day_loads"}


def test_every_shard_step_gets_its_own_shard(platform, monkeypatch, s3_client, s3_env):
    """The shard steps' hand-overs go through the bucket: each mapped step must read its own shard."""
    job, instance = platform
    monkeypatch.setenv("GREENSTREAM_SHARDS", "3")
    result = job.execute_in_process(partition_key=DAYS[0].isoformat(), instance=instance)
    assert result.success
    steps = {e.step_key for e in result.get_step_success_events()}
    for verb in ("standardize", "score"):
        mapped = sorted(s for s in steps if f".{verb}[" in s)
        assert mapped == [f"{asset}.{verb}[{Shard(k, 3).label}]" for k in range(3)
                          for asset in ([STANDARDIZED] if verb == "standardize" else [SCORED])]
    for k in range(3):
        frame = staging.read_frame(s3_client, s3_env["GREENSTREAM_BUCKET"], SCORED, DAYS[0], "meters", shard=Shard(k, 3))
        assert frame.height and frame.select(meter_shard(3).eq(k).all()).item()


def ingest_job():
    """The ingest job as a code location builds it (for processes that load it again)."""
    return build_definitions(load_settings()).resolve_job_def(INGEST_JOB)


def test_shard_steps_in_processes_of_their_own_give_the_same_stores(platform, monkeypatch, database_url, s3_client,
                                                                    s3_env):
    """The multiprocess executor places every step, each parse batch's and each shard's among them,
    in a process of its own: they meet only in the bucket and PostgreSQL, and the day comes out as
    one process made it (every file parsed again, in batches of a few files)."""
    job, instance = platform
    day = DAYS[0]
    assert job.execute_in_process(partition_key=day.isoformat(), instance=instance).success
    prefixes = lake_prefixes(day)
    objects, writes = etags(s3_client, s3_env["GREENSTREAM_BUCKET"], prefixes), settled_writes(database_url)
    monkeypatch.setenv("GREENSTREAM_SHARDS", "2")
    monkeypatch.setenv("GREENSTREAM_EXECUTOR", "multiprocess")
    monkeypatch.setenv("GREENSTREAM_PARSE_BATCH_BYTES", "40000")
    monkeypatch.setenv("GREENSTREAM_MAX_LINE_BYTES", "2097152")  # a new read: no file is reused

    result = dg.execute_job(dg.reconstructable(ingest_job), instance=instance, tags={"dagster/partition": day.isoformat()})

    assert result.success
    started = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    parsed = {e.step_key: e.pid for e in started if e.step_key.startswith(f"{RAW}.parse[")}
    shards = {e.step_key: e.pid for e in started if "[" in e.step_key and e.step_key not in parsed}
    raw = instance.get_latest_materialization_event(dg.AssetKey(RAW)).asset_materialization.metadata
    assert len(parsed) == raw["parse_batches"].value > 1 and raw["files_reused"].value == 0
    assert len(shards) == 4  # standardize and score, two shards each
    assert len(set(parsed.values()) | set(shards.values())) == len(parsed) + len(shards)  # a process each
    assert not staging_pieces(s3_client, s3_env["GREENSTREAM_BUCKET"])
    assert staging.layout(s3_client, s3_env["GREENSTREAM_BUCKET"], SCORED, day) == 2
    # The load record only, naming the digest now kept per shard (as in the test above).
    assert set(k for k, v in settled_writes(database_url).items() if writes.get(k) != v) <= {"day_loads"}
    assert etags(s3_client, s3_env["GREENSTREAM_BUCKET"], prefixes) == objects
