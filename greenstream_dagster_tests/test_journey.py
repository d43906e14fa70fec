"""SPEC §9: the record journey — source line, run, standardization, score, storage, lake file.

The story is tested from hand-built facts; the gathering end to end on the
embedded S3 and PostgreSQL after a sensor-triggered run, its expectations taken
from the generator's manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import dagster as dg
import pytest

from greenstream_dagster import cli
from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.journey.facts import (
    DELIVERED_AGAIN,
    READING,
    REVISION,
    Archival,
    Delivery,
    Ingestion,
    LakeRow,
    MeterDay,
    QuarantineJourney,
    ReadingJourney,
    Revision,
    RulesInForce,
    SourceObject,
    Storage,
    Transformation,
    Trigger,
)
from greenstream_dagster.journey.gather import (
    JourneyNotFound,
    JourneySources,
    journey_of_interval,
    journey_of_line,
    journey_of_record,
)
from greenstream_dagster.journey.points import points_lost
from greenstream_dagster.journey.story import render
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.operational.partitions import partition_name
from greenstream_dagster.upload_command import upload_folder

# --- the story, from hand-built facts -------------------------------------------------

TS = datetime(2024, 4, 15, 18, 45, tzinfo=timezone.utc)
DAY = TS.date()
KEY = "raw-data/2024-04-15/meters-0001.csv"
LATE_KEY = "raw-data/2024-04-15/zz-revisions.csv"
TEXT = "SM-48291|2024-04-15T18:45:00Z|3250"
RECORD_ID = hashlib.sha256(TEXT.encode()).hexdigest()
RULES = RulesInForce(min_kw=0.0, max_kw=100.0, timezone="UTC", peak_start=time(17), peak_end=time(21),
                     hemisphere="north", stuck_variance_kw2=0.01, stuck_min_readings=48, spike_sigmas=4.0,
                     gap_max_missing_rate=0.20)
SENSOR_RUN = Trigger(
    partition_key="2024-04-15", run_id="4f0c9a7e-0000-4000-8000-000000000001", job_name="ingest_partition_job",
    status="SUCCESS", started_at=datetime(2024, 4, 15, 19, 3, tzinfo=timezone.utc),
    ended_at=datetime(2024, 4, 15, 19, 4, tzinfo=timezone.utc),
    materialized_at=datetime(2024, 4, 15, 19, 3, 50, tzinfo=timezone.utc),
    tags={"dagster/sensor_name": "raw_file_sensor", "dagster/run_key": "raw-2024-04-15-9f8e"},
)
CLEAN_METER = MeterDay(usable_readings=96, variance_kw2=1.2, stuck=False, spike_count=0,
                       missing_rate_7d=0.0, gap=False, reliable=True)


def transformation(**changes) -> Transformation:
    base = Transformation(
        value_raw="3250", unit_raw="W", value_kw=3.25, tariff_period="PEAK", season="SPRING",
        local_time=TS, validation_errors=(), out_of_range=False, revised=True, is_spike=False,
        meter_stuck=False, meter_gap=False, quality_score=100, quality_grade="A",
        revisions=(Revision(record_id="7a" * 32, value_raw="2900", unit_raw="W", source_key=KEY, source_line=17),),
        meter_day=CLEAN_METER, rules=RULES,
    )
    return replace(base, **changes)


def journey(t: Transformation | None = None, **changes) -> ReadingJourney:
    base = ReadingJourney(
        record_id=RECORD_ID, meter_id="SM-48291", reading_ts=TS, partition_date=DAY,
        ingestion=Ingestion(
            source_key=LATE_KEY, source_line=2, raw_line="SM-48291,2024-04-15T18:45:00Z,3250,W",
            source=SourceObject(key=LATE_KEY, size=1_234_567, etag="5d41402abc4b2a76b9719d911017c592",
                                last_modified=datetime(2024, 4, 15, 19, 2, 11, tzinfo=timezone.utc),
                                seen_by="raw_readings staging"),
            deliveries=(
                Delivery(KEY, 17, "2900", "W", "7a" * 32, REVISION),
                Delivery(LATE_KEY, 2, "3250", "W", RECORD_ID, READING),
            ),
        ),
        trigger=SENSOR_RUN,
        transformation=t or transformation(),
        storage=Storage(table="meter_readings", partition_table="meter_readings_p20240415",
                        loaded_at=datetime(2024, 4, 15, 19, 3, 41, tzinfo=timezone.utc), retention_days=90),
        archival=Archival(
            bucket="greenstream", readings_key="analytics/readings/year=2024/month=04/day=15/part-0.parquet",
            archived_grades=("A", "B", "C"), readings_day_written=True,
            lake_row=LakeRow(value_kw=3.25, quality_grade="A", quality_score=100),
            meter_daily_key="analytics/meter_daily/year=2024/month=04/day=15/part-0.parquet",
            meter_daily_written=True,
            meter_daily={"readings": 96, "usable_readings": 96, "energy_kwh": 78.5, "reliable": True, "mean_score": 100.0},
        ),
    )
    return replace(base, **changes)


def chapter(story: str, number: int) -> str:
    """The text of chapter `number` (1-based), up to the next chapter."""
    names = ("Ingestion", "Trigger", "Transformation", "Storage", "Archival")
    start = story.index(f"\n{number}. {names[number - 1]}\n")
    end = story.find(f"\n{number + 1}. ", start + 1) if number < 5 else len(story)
    return story[start:end]


def test_story_tells_five_chapters_in_order():
    story = render(journey())
    positions = [story.index(f"{n}. {name}") for n, name in
                 enumerate(("Ingestion", "Trigger", "Transformation", "Storage", "Archival"), start=1)]
    assert positions == sorted(positions)
    assert story.startswith("The journey of reading SM-48291 at 2024-04-15T18:45:00Z (partition 2024-04-15)")


def test_ingestion_names_the_line_its_text_the_arrival_and_every_delivery():
    text = chapter(render(journey()), 1)
    assert f"Line 2 of {LATE_KEY}:" in text
    assert "SM-48291,2024-04-15T18:45:00Z,3250,W" in text
    assert "arrived at 2024-04-15T19:02:11Z" in text
    assert "ETag 5d41402abc4b2a76b9719d911017c592, 1,234,567 bytes" in text
    assert f"line 17 of {KEY}: 2900 W — a revision, superseded" in text
    assert f"line 2 of {LATE_KEY}: 3250 W — the reading (last delivered)" in text


def test_trigger_names_the_sensor_its_run_key_and_the_run():
    text = chapter(render(journey()), 2)
    assert "Sensor raw_file_sensor (run key raw-2024-04-15-9f8e) requested run 4f0c9a7e-0000-4000-8000-000000000001" in text
    assert "started at 2024-04-15T19:03:00Z" in text
    assert "materialized meter_readings for partition 2024-04-15" in text


def test_an_unknown_run_says_why():
    unknown = Trigger(partition_key="2024-04-15", unknown_reason="DAGSTER_HOME is not set")
    assert "The run is unknown: DAGSTER_HOME is not set." in chapter(render(journey(trigger=unknown)), 2)


def test_transformation_shows_the_conversion_arithmetic_and_the_record_id_text():
    text = chapter(render(journey()), 3)
    assert "3250 W × 0.001 → 3.25 kW" in text
    assert f'sha256("{TEXT}") = {RECORD_ID} (matches)' in text
    assert "→ PEAK" in text and "April in the northern hemisphere → SPRING" in text
    assert "7a" * 32 in text  # the superseded revision
    assert "Points lost: none." in text
    assert "Score: 100, nothing lost → grade A (90–100)." in text


@pytest.mark.parametrize("value, unit, factor, kw", [("3.25", "kW", "1", "3.25"), ("0.00325", "MW", "1000", "3.25")])
def test_conversion_factor_per_unit(value, unit, factor, kw):
    t = transformation(value_raw=value, unit_raw=unit)
    assert f"{value} {unit} × {factor} → {kw} kW" in chapter(render(journey(t)), 3)


def test_points_lost_are_listed_per_rule():
    # Missing unit, invalid value, no value_kw, and a stuck meter: 100 − 40 − 30 − 20 − 10 = 0.
    t = transformation(value_raw="abc", unit_raw=None, value_kw=None, validation_errors=("INVALID_VALUE",),
                       meter_stuck=True, quality_score=0, quality_grade="F",
                       meter_day=replace(CLEAN_METER, stuck=True, reliable=False, variance_kw2=0.0))
    lost = points_lost(t)
    assert [(p.points, p.rule) for p in lost] == [
        (40, "missing value or unit"), (30, "validation errors"), (20, "out of range / no value"), (10, "meter unreliable"),
    ]
    text = chapter(render(journey(t)), 3)
    assert "−40 missing value or unit: unit missing" in text
    assert "−30 validation errors: INVALID_VALUE: 'abc' is not a decimal number" in text
    assert "−20 out of range / no value: no value_kw" in text
    assert "−10 meter unreliable: meter stuck: variance 0 kW² < 0.01 over 96 usable readings" in text
    assert "Score: 100 − 40 − 30 − 20 − 10 = 0 → grade F (below 60)." in text


def test_out_of_range_and_a_gap_cost_30_points():
    t = transformation(value_raw="250", unit_raw="kW", value_kw=250.0, out_of_range=True, meter_gap=True,
                       quality_score=70, quality_grade="C",
                       meter_day=replace(CLEAN_METER, gap=True, reliable=False, missing_rate_7d=0.28125))
    text = chapter(render(journey(t)), 3)
    assert "250 kW × 1 → 250 kW (rounded half to even to 4 decimals), outside the physical range 0–100 kW" in text
    assert "−20 out of range / no value: 250 kW is outside 0–100 kW" in text
    assert "−10 meter unreliable: communication gap: 28.1% of its 7-day slots missing > 20%" in text
    assert "Score: 100 − 20 − 10 = 70 → grade C (60–74)." in text


def test_a_spike_on_another_reading_makes_the_meter_unreliable():
    t = transformation(quality_score=90, meter_day=replace(CLEAN_METER, spike_count=1, reliable=False))
    assert "−10 meter unreliable: 1 other spike reading of the meter that day" in chapter(render(journey(t)), 3)


def test_storage_names_the_partition_table_and_load_time():
    text = chapter(render(journey()), 4)
    assert "PostgreSQL meter_readings, table partition meter_readings_p20240415, loaded at 2024-04-15T19:03:41Z" in text
    assert "retention drops the whole day partition 90 days after the day" in text


def test_archival_names_the_lake_file_of_a_graded_reading():
    text = chapter(render(journey()), 5)
    assert "Archived (grade A is within A–C): s3://greenstream/analytics/readings/year=2024/month=04/day=15/part-0.parquet" in text
    assert "analytics/meter_daily/year=2024/month=04/day=15/part-0.parquet: 96 readings" in text


def test_grade_f_is_not_archived_and_the_story_says_why():
    t = transformation(value_raw=None, value_kw=None, quality_score=40, quality_grade="F")
    j = journey(t, archival=replace(journey().archival, lake_row=None))
    assert "Not archived: grade F is below the lake's grades A–C" in chapter(render(j), 5)


def test_a_quarantined_row_tells_its_reason_and_raw_line():
    q = QuarantineJourney(
        partition_date=DAY, source_key=KEY, source_line=9, raw_line="sm-48291,2024-04-15T18:45:00Z,3250,W",
        reason="INVALID_METER_ID", loaded_at=datetime(2024, 4, 15, 19, 3, 41, tzinfo=timezone.utc),
        source=journey().ingestion.source, trigger=SENSOR_RUN,
    )
    story = render(q)
    assert story.startswith(f"The journey of quarantined line 9 of {KEY}")
    assert "sm-48291,2024-04-15T18:45:00Z,3250,W" in chapter(story, 1)
    assert "Quarantined as INVALID_METER_ID: meter_id does not match ^SM-[0-9]{1,12}$" in chapter(story, 3)
    assert "rejected_readings" in chapter(story, 4)
    assert "Not archived" in chapter(story, 5)


@pytest.mark.parametrize("argv", [
    ["--meter", "SM-1", "--line", "3"],  # half of two questions (--meter alone asks for the registry entry)
    ["--record-id", "ab" * 32, "--meter", "SM-1", "--timestamp", "2024-04-15T18:45:00Z"],  # two questions
    ["--record-id", "not-a-sha"],
    ["--meter", "SM-1", "--timestamp", "yesterday"],
    ["--source-key", KEY, "--line", "1"],  # the header
])
def test_the_command_refuses_an_unclear_question_before_touching_a_store(argv, capsys):
    assert cli.main(["journey", *argv]) == 2
    assert capsys.readouterr().err.startswith("greenstream journey: ")


# --- end to end: generator → upload → sensor → run → journey --------------------------

START = datetime.now(timezone.utc).date() - timedelta(days=1)  # inside the sensor's look-back


@pytest.fixture
def ingested(point_platform, s3_env, database_url, s3_client, monkeypatch, tmp_path):
    """One generated day uploaded, the sensor evaluated and its run executed, as the daemon would."""
    point_platform(START)
    rules = RulesConfig(partitions_start=START)
    manifest = generate(GeneratorConfig(out=tmp_path / "sample", meters=20, days=1, start=START, seed=5,
                                        revisions=2, duplicates=1, quarantine_rows=1, validation_rows=1, rules=rules))
    bucket = s3_env["GREENSTREAM_BUCKET"]
    upload_folder(s3_client, bucket, tmp_path / "sample" / "raw-data")
    defs = build_definitions(load_settings())
    with dg.instance_for_test() as instance:  # also points DAGSTER_HOME at the test instance
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                          resources={"s3": S3Resource(bucket=bucket)})
        (request,) = defs.get_sensor_def("raw_file_sensor")(context).run_requests
        # The daemon tags a sensor's run with the sensor's name and the request's run key.
        tags = {**request.tags, "dagster/sensor_name": "raw_file_sensor", "dagster/run_key": request.run_key}
        result = defs.resolve_job_def("ingest_partition_job").execute_in_process(
            partition_key=request.partition_key, instance=instance, tags=tags)
        assert result.success
        sources = JourneySources(s3=s3_client, bucket=bucket, database_url=database_url, rules=rules, instance=instance)
        yield manifest, sources, result.run_id, request.run_key


def expected_kw(value: str, unit: str) -> float:
    factor = {"W": Decimal("0.001"), "kW": Decimal(1), "MW": Decimal(1000)}[unit]
    return float((Decimal(value) * factor).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def test_journeys_after_a_sensor_run_match_the_manifest_and_the_command_tells_them(
    ingested, s3_client, capsys, monkeypatch
):
    manifest, sources, run_id, run_key = ingested

    # A revised reading, by record_id: the later delivery wins, the earlier is its revision.
    revision = manifest.revisions[0]
    j = journey_of_record(sources, revision.new_record_id)
    assert (j.ingestion.source_key, j.ingestion.source_line) == (revision.new_key, revision.new_line)
    assert j.ingestion.raw_line is not None and revision.new_value in j.ingestion.raw_line
    assert j.ingestion.source.last_modified is not None and j.ingestion.source.etag
    roles = {(d.source_key, d.source_line): d.role for d in j.ingestion.deliveries}
    assert roles == {(revision.old_key, revision.old_line): REVISION, (revision.new_key, revision.new_line): READING}
    assert j.trigger.run_id == run_id and j.trigger.tags["dagster/run_key"] == run_key
    assert j.trigger.started_at is not None and j.trigger.status == "SUCCESS"
    t = j.transformation
    assert t.value_kw == expected_kw(revision.new_value, revision.unit)
    assert t.revised and [r.record_id for r in t.revisions] == [revision.old_record_id]
    assert (t.quality_score, t.quality_grade) == (100, "A")  # a revision's meter is otherwise clean
    assert j.storage.partition_table == partition_name("meter_readings", START)
    assert j.archival.lake_row == LakeRow(value_kw=t.value_kw, quality_grade="A", quality_score=100)
    s3_client.head_object(Bucket=sources.bucket, Key=j.archival.readings_key)
    assert j.archival.meter_daily is not None and j.archival.meter_daily["meter_id"] == revision.meter_id
    story = render(j)
    assert f"run key {run_key}" in story and f"run {run_id}" in story

    # The reading's own line, the superseded record_id and the superseded line all lead to it.
    assert journey_of_line(sources, revision.new_key, revision.new_line).record_id == revision.new_record_id
    superseded = journey_of_record(sources, revision.old_record_id)
    assert superseded.record_id == revision.new_record_id
    assert superseded.asked_for.startswith(f"Asked for record_id {revision.old_record_id}")
    assert journey_of_line(sources, revision.old_key, revision.old_line).record_id == revision.new_record_id

    # A reading graded F, by meter and timestamp: scored as the manifest expects, not archived.
    invalid = next(v for v in manifest.validation if v.expected["quality_grade"] == "F")
    reading_ts = datetime.fromisoformat(invalid.timestamp.replace("Z", "+00:00"))
    f = journey_of_interval(sources, invalid.meter_id, reading_ts)
    assert (f.ingestion.source_key, f.ingestion.source_line) == (invalid.key, invalid.line)
    assert f.transformation.value_kw == invalid.expected["value_kw"]
    assert f.transformation.quality_score == invalid.expected["quality_score"]
    assert 100 - sum(p.points for p in points_lost(f.transformation)) == f.transformation.quality_score
    assert f.archival.lake_row is None and "Not archived: grade F" in render(f)

    # A quarantined row, by key and line: its reason and raw line from rejected_readings.
    row = manifest.quarantine[0]
    q = journey_of_line(sources, row.key, row.line)
    assert isinstance(q, QuarantineJourney)
    assert (q.reason, q.raw_line, q.trigger.run_id) == (row.code, row.raw_line, run_id)

    # A copy delivered again leads to its reading.
    duplicate = manifest.duplicates[0]
    d = journey_of_line(sources, duplicate.original_key, duplicate.original_line)
    assert d.record_id == duplicate.record_id
    assert DELIVERED_AGAIN in {x.role for x in d.ingestion.deliveries}

    with pytest.raises(JourneyNotFound, match="no reading of SM-999999"):
        journey_of_interval(sources, "SM-999999", reading_ts)

    # The same journeys through the command (one pipeline run serves both: it is the slow part).
    capsys.readouterr()
    assert cli.main(["journey", "--meter", revision.meter_id, "--timestamp", revision.timestamp]) == 0
    story = capsys.readouterr().out
    assert "1. Ingestion" in story and "5. Archival" in story
    assert f"run {run_id}" in story  # found in the instance of DAGSTER_HOME

    with monkeypatch.context() as env:  # undone before instance_for_test restores DAGSTER_HOME
        env.delenv("DAGSTER_HOME")
        assert cli.main(["journey", "--record-id", revision.new_record_id, "--date", START.isoformat(), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["kind"] == "reading" and facts["ingestion"]["source_line"] == revision.new_line
    assert facts["points_lost"] == []
    assert "DAGSTER_HOME is not set" in facts["trigger"]["unknown_reason"]

    assert cli.main(["journey", "--meter", "SM-999999", "--timestamp", revision.timestamp]) == 1
    assert "no reading of SM-999999" in capsys.readouterr().err
    assert cli.main(["journey", "--source-key", "raw-data/x.csv", "--line", "2"]) == 1
