"""The platform's rules on a generated landing zone produce exactly what the manifest expects.

The generator's manifest is the contract other tests (sensor, assets, stores)
assert against; this test keeps it honest against the rules themselves.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from greenstream_dagster.generator import GeneratorConfig, generate, with_preset
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.csv_file import DeadLetterFile, read_landing_file
from greenstream_dagster.rules.landing_key import IgnoredKey, parse_landing_key
from greenstream_dagster.rules.record_id import with_record_id
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster.rules.standardize import standardize

ARRIVAL = datetime(2024, 5, 1, tzinfo=timezone.utc)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    out = tmp_path_factory.mktemp("landing")
    manifest = generate(with_preset(GeneratorConfig(out=out, meters=150, days=8, seed=21, meters_per_file=60,
                                                    gzip_share=0.3), "default"))
    config = RulesConfig(partitions_start=date.fromisoformat(manifest.partitions_start))
    standardized, dead = {}, {}
    for day in manifest.days:
        frames = []
        keys = sorted((f.key for f in manifest.files if f.key.startswith(f"raw-data/{day}/")), key=str.encode)
        for i, key in enumerate(keys):  # uploaded in key order: later keys arrive later
            try:
                landing = parse_landing_key(key)
            except IgnoredKey:
                continue
            try:
                frames.append(read_landing_file((out / key).read_bytes(), key,
                                                ARRIVAL + timedelta(seconds=i), landing.gzip))
            except DeadLetterFile:
                dead.setdefault(day, []).append(key)
        standardized[date.fromisoformat(day)] = standardize(pl.concat(frames), date.fromisoformat(day), config)
    scored = {}
    for day, result in standardized.items():
        history = pl.concat([other.meter_stats for d, other in standardized.items() if d != day])
        scored[day] = score_partition(result.readings, day, config, history)
    return manifest, standardized, scored, dead


def test_partition_counts_grades_and_faults_match_the_manifest(platform):
    manifest, standardized, scored, dead = platform
    for expected in manifest.expected:
        day = date.fromisoformat(expected.date)
        result, meters, readings = standardized[day], scored[day].meters, scored[day].readings
        assert result.readings.height == expected.readings
        assert result.revisions.height == expected.revisions
        assert dict(result.rejected.group_by("reason").len().iter_rows()) == {
            code: n for code, n in expected.quarantined.items() if n}
        assert len(dead.get(expected.date, [])) == expected.dead_letter_files
        assert dict(readings.group_by("quality_grade").len().iter_rows()) == {
            g: n for g, n in expected.grades.items() if n}
        assert sorted(meters.filter("stuck")["meter_id"]) == expected.stuck_meters
        assert sorted(meters.filter("gap")["meter_id"]) == expected.gap_meters
        spikes = readings.filter("is_spike").select("meter_id", "reading_ts").rows()
        assert sorted(spikes) == sorted((s["meter_id"], utc(s["timestamp"])) for s in expected.spike_readings)
    assert any(e.stuck_meters for e in manifest.expected) and any(e.gap_meters for e in manifest.expected)
    assert any(e.spike_readings for e in manifest.expected)


def test_rows_land_where_the_manifest_says(platform):
    manifest, standardized, _, dead = platform
    rejected = pl.concat([r.rejected for r in standardized.values()])
    readings = with_record_id(pl.concat([r.readings for r in standardized.values()]))  # as the load derives it

    def reading(meter_id: str, timestamp: str) -> dict:
        (row,) = readings.filter((pl.col("meter_id") == meter_id) & (pl.col("reading_ts") == utc(timestamp))).to_dicts()
        return row

    for q in manifest.quarantine:
        (row,) = rejected.filter((pl.col("source_key") == q.key) & (pl.col("source_line") == q.line)).to_dicts()
        assert (row["reason"], row["raw_line"]) == (q.code, q.raw_line)
    for v in manifest.validation:
        row = reading(v.meter_id, v.timestamp)
        assert (row["source_key"], row["source_line"], row["value_raw"], row["unit_raw"]) == (
            v.key, v.line, v.value_raw, v.unit_raw)
        assert row["value_kw"] == v.expected["value_kw"]
        assert list(row["validation_errors"]) == v.expected["validation_errors"]
        assert row["out_of_range"] == v.expected["out_of_range"]
    for r in manifest.revisions:
        row = reading(r.meter_id, r.timestamp)
        assert row["revised"] and (row["record_id"], row["source_key"], row["source_line"]) == (
            r.new_record_id, r.new_key, r.new_line)
    for d in manifest.duplicates:
        row = reading(d.meter_id, d.timestamp)
        assert not row["revised"] and (row["record_id"], row["source_key"], row["source_line"]) == (
            d.record_id, d.copy_key, d.copy_line)
    assert sorted(k for keys in dead.values() for k in keys) == sorted(d.key for d in manifest.dead_letters)
