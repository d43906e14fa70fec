"""SPEC §1, §2 on hostile input, through the real path: the hostile corpus is uploaded to the
embedded S3, the day is ingested (raw → standardized → scored → PostgreSQL) in one Dagster run,
and every object must come out as its kind says — dead letter with its reason, quarantined rows
with their codes at their lines, readings with their Decimal-computed value_kw — while the good
file beside the bad ones loads whole. Every physical line of every readable file is accounted
for, and no key or reason forges a log line or floods the stores.
"""

from __future__ import annotations

import gzip
import re

import dagster as dg
import polars as pl
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.rules.bounded_text import cut_marker
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import staging
from greenstream_dagster.storage.landing import dead_letter_key, put_object
from greenstream_dagster_tests.hostile_corpus import DAY, LIMITS, MAX_STORED_CHARS, build_corpus, good_file

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
REASON_BOUND = MAX_STORED_CHARS + len(cut_marker(10**12))


@pytest.fixture(scope="module")
def corpus():
    return [*build_corpus(), good_file()]


@pytest.fixture
def ingested(point_platform, corpus, s3_env, s3_client, database_url, monkeypatch, tmp_path):
    """The whole corpus in one date folder, ingested by one run of the sensor's job."""
    point_platform(DAY, **LIMITS)
    bucket = s3_env["GREENSTREAM_BUCKET"]
    for kind in corpus:
        put_object(s3_client, bucket, kind.key, kind.data)
    defs = build_definitions(load_settings())
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("ingest_partition_job").execute_in_process(
            partition_key=DAY.isoformat(), instance=instance)
        logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, logs, bucket


def query(database_url: str, sql: str, *params):
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def decompressed_text(kind) -> str:
    """The file's text, decoded here on its own (not by the platform's reader)."""
    data = gzip.decompress(kind.data) if kind.gzipped else kind.data
    return data.decode("utf-8").removeprefix("\ufeff")


def assert_every_line_accounted(kind, text: str, rows: pl.DataFrame, quarantined: set[int], placed: int) -> None:
    """SPEC §1 accounting: each physical line is the header, a blank line, the first line of exactly
    one row (quarantined or placed) or a continuation line of a quoted multi-line row."""
    physical = text.split("\n")
    if text.endswith("\n"):
        physical.pop()
    # CR belongs to the line ending only before LF (the last line may have no LF).
    terminated = [i < len(physical) - 1 or text.endswith("\n") for i in range(len(physical))]
    lines = [p[:-1] if t and p.endswith("\r") else p for p, t in zip(physical, terminated)]
    blank = {n for n, line in enumerate(lines, 1) if line == ""}
    header = min(n for n in range(1, len(lines) + 1) if n not in blank)
    place: dict[int, str] = {header: "header"}
    for start, count, raw in rows.select("source_line", "line_count", "raw_line").iter_rows():
        for n in range(start, start + count):
            assert n not in place, (kind.name, n, "counted twice")
            place[n] = "row" if n == start else "continuation"
        if count == 1 and "…[cut:" not in raw:
            assert raw == lines[start - 1], (kind.name, start)  # the row is that line's text
        elif count > 1:
            assert raw == "\n".join(lines[start - 1 : start - 1 + count]), (kind.name, start)
    for n in range(1, len(lines) + 1):
        assert n in place or n in blank, (kind.name, n, "line lost")
        assert not (n in place and n in blank and place[n] != "continuation"), (kind.name, n)
    starts = set(rows["source_line"])
    assert quarantined <= starts, kind.name
    assert len(starts) - len(quarantined) == placed, (kind.name, "placed rows")


def test_hostile_corpus_comes_out_as_each_kind_says(ingested, corpus, s3_client, database_url):
    result, logs, bucket = ingested
    assert result.success

    # Dead letters: exactly the expected files, each reason naming the problem, bounded and escaped.
    dead = dict(query(database_url, "SELECT source_key, reason FROM dead_letter_files WHERE kind = 'file'"))
    expected_dead = {k.key: k for k in corpus if k.expected.dead_letter}
    assert set(dead) == set(expected_dead)
    for key, kind in expected_dead.items():
        assert kind.expected.dead_letter in dead[key], (kind.name, dead[key])
        assert len(dead[key]) <= REASON_BOUND and not _CONTROL.search(dead[key]), kind.name
        s3_client.head_object(Bucket=bucket, Key=dead_letter_key(key))  # the copy is kept

    raw_rows = staging.read_frame(s3_client, bucket, "raw_readings", DAY, "rows")
    rejected = query(database_url, "SELECT source_key, source_line, reason, raw_line FROM rejected_readings")
    readings = query(database_url, "SELECT source_key, source_line, value_kw, validation_errors FROM meter_readings")
    revisions = query(database_url, "SELECT source_key FROM reading_revisions")
    assert all(len(raw) <= REASON_BOUND for *_, raw in rejected)  # raw lines stored bounded

    for kind in corpus:
        expected = kind.expected
        got_rejected = {line: reason for key, line, reason, _ in rejected if key == kind.key}
        got_readings = {line: (kw, list(errors)) for key, line, kw, errors in readings if key == kind.key}
        rows = raw_rows.filter(pl.col("source_key") == kind.key)
        if expected.dead_letter or expected.ignored:
            assert rows.height == 0 and not got_rejected and not got_readings, kind.name
            continue
        assert got_rejected == expected.quarantined, kind.name
        assert got_readings == expected.readings, kind.name
        assert sum(key == kind.key for (key,) in revisions) == expected.revisions, kind.name
        placed = len(expected.readings) + expected.revisions + expected.redeliveries
        assert_every_line_accounted(kind, decompressed_text(kind), rows, set(expected.quarantined), placed)

    good = corpus[-1]
    assert len(good.expected.readings) == 96
    assert {line for key, line, *_ in readings if key == good.key} == set(good.expected.readings)

    # Ignored keys are reported, not read; no key or reason forges a line of the run's log.
    raw_event = result.asset_materializations_for_node("raw_readings")[0]
    assert raw_event.metadata["ignored_keys"].value == sum(1 for k in corpus if k.expected.ignored)
    assert raw_event.metadata["dead_lettered_files"].value == len(expected_dead)
    assert len(raw_event.metadata["dead_letters"].value) < 5 * 1000
    for message in logs:
        for line in message.splitlines()[1:]:
            assert "FORGED" not in line, message[:300]
    assert any("FORGED" in message for message in logs)  # it was logged, escaped on one line


def test_the_corpus_holds_at_least_seventy_kinds_each_with_an_outcome(corpus):
    kinds = corpus[:-1]  # the last is the good file
    assert len(kinds) >= 70
    for kind in kinds:
        expected = kind.expected
        assert expected.dead_letter or expected.ignored or expected.quarantined or expected.readings \
            or kind.name.startswith(("header_only", "bom_header_only")), kind.name
