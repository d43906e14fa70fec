"""`greenstream dev` shows the fleet as the generator made it (SPEC §3): its partitions start on the
sample's first day, so the 7-day windows are clipped there and the checks flag the injected
meters only; most readings grade A. The expectations are the generator's manifest, computed
from what it injected, not from the platform."""

from __future__ import annotations

from collections import Counter
from datetime import date

import dagster as dg
import psycopg

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.dev_command import sample_data, sample_partitions_start
from greenstream_dagster.generator.manifest import Manifest
from greenstream_dagster.settings import load_settings
from greenstream_dagster.upload_command import upload_folder

METERS, DAYS = 150, 6


def test_the_dev_sample_grades_mostly_a_and_its_checks_flag_the_injected_meters(
    s3_env, s3_client, database_url, monkeypatch, tmp_path
):
    for name, value in {**s3_env, "GREENSTREAM_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GREENSTREAM_PARTITIONS_START", raising=False)
    settings = load_settings()
    folder = sample_data(tmp_path, METERS, DAYS, None, settings.lookback_days)  # as `greenstream dev` makes it
    manifest = Manifest.load(folder)
    assert len(manifest.days) == DAYS
    monkeypatch.setenv("GREENSTREAM_PARTITIONS_START", sample_partitions_start(folder))  # as dev exports it
    assert sample_partitions_start(folder) == manifest.days[0]
    upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], folder / "raw-data")

    job = build_definitions(load_settings()).resolve_job_def("ingest_partition_job")
    with dg.instance_for_test() as instance:
        for expected in manifest.expected:
            result = job.execute_in_process(partition_key=expected.date, instance=instance)
            checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
            injected = {
                "stuck_meters": len(expected.stuck_meters),
                "erratic_spikes": len({s["meter_id"] for s in expected.spike_readings}),
                "communication_gaps": len(expected.gap_meters),
            }
            for name, meters in injected.items():
                metadata = checks[name].metadata
                assert metadata["affected_meters"].value == meters, (expected.date, name)
                assert checks[name].passed, (expected.date, name, checks[name].description)

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT partition_date, quality_grade, count(*) FROM meter_readings GROUP BY 1, 2"
        ).fetchall()
    grades: dict[date, Counter] = {}
    for day, grade, count in rows:
        grades.setdefault(day, Counter())[grade] = count
    for expected in manifest.expected:
        day = grades[date.fromisoformat(expected.date)]
        assert dict(day) == {g: n for g, n in expected.grades.items() if n}, expected.date
        assert day["A"] / sum(day.values()) > 0.95, expected.date
