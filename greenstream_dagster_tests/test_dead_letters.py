"""The dead letter store (SPEC §1, §6): what was given up on, until a replay."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from greenstream_dagster.storage.operational.dead_letters import (
    list_open_dead_letters,
    mark_replayed,
    record_dead_letter_file,
    record_dead_letter_partition,
)
from greenstream_dagster_tests.operational_frames import DAY

KEY = "raw-data/2024-04-15/broken.csv.gz"


def test_an_unreadable_file_is_recorded_with_its_copy(database_url):
    copy = "dead-letter/2024-04-15/broken.csv.gz"
    letter = record_dead_letter_file(database_url, DAY, KEY, '"e1"', "CORRUPT_GZIP", copy)
    assert (letter.kind, letter.source_key, letter.etag, letter.reason, letter.attempts) == (
        "file", KEY, '"e1"', "CORRUPT_GZIP", 1)
    assert letter.dead_letter_key == copy
    assert list_open_dead_letters(database_url) == [letter]


def test_the_same_file_judged_the_same_again_changes_nothing(database_url):
    """An identical re-run reads the dead-lettered file again (SPEC §5: it changes zero rows)."""
    first = record_dead_letter_file(database_url, DAY, KEY, '"e1"', "CORRUPT_GZIP", "dead-letter/a")
    version = row_version(database_url)
    again = record_dead_letter_file(database_url, DAY, KEY, '"e1"', "CORRUPT_GZIP", "dead-letter/a")
    assert again == first
    assert row_version(database_url) == version  # not even rewritten with the same values


def row_version(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT xmin::text FROM dead_letter_files").fetchone()[0]


def test_recording_the_same_file_with_another_reason_counts_an_attempt(database_url):
    record_dead_letter_file(database_url, DAY, KEY, '"e1"', "CORRUPT_GZIP")
    version = row_version(database_url)
    again = record_dead_letter_file(database_url, DAY, KEY, '"e1"', "OBJECT_TOO_LARGE")
    assert (again.attempts, again.reason) == (2, "OBJECT_TOO_LARGE")
    assert row_version(database_url) != version
    assert len(list_open_dead_letters(database_url)) == 1
    new_version = record_dead_letter_file(database_url, DAY, KEY, '"e2"', "WRONG_HEADER")
    assert new_version.attempts == 1
    assert len(list_open_dead_letters(database_url)) == 2


def test_a_partition_that_failed_after_its_retries_is_recorded(database_url):
    letter = record_dead_letter_partition(database_url, DAY, "meter_readings", "OperationalError: timeout", run_id="r1")
    again = record_dead_letter_partition(database_url, DAY, "meter_readings", "OperationalError: timeout", run_id="r2")
    assert (letter.kind, letter.source_key, letter.asset_key) == ("partition", None, "meter_readings")
    assert (again.dead_letter_id, again.attempts, again.run_id) == (letter.dead_letter_id, 2, "r2")
    assert list_open_dead_letters(database_url, kind="partition") == [again]
    assert list_open_dead_letters(database_url, kind="file") == []


def test_a_replayed_dead_letter_is_no_longer_open(database_url):
    other_day = DAY + timedelta(days=1)
    first = record_dead_letter_file(database_url, DAY, KEY, '"e1"', "EMPTY_OBJECT")
    second = record_dead_letter_partition(database_url, other_day, "meter_readings", "timeout")
    assert [d.partition_date for d in list_open_dead_letters(database_url)] == [DAY, other_day]
    assert mark_replayed(database_url, DAY, [first.dead_letter_id], replay_run_id="replay-1") == 1
    assert mark_replayed(database_url, DAY, [first.dead_letter_id]) == 0
    assert list_open_dead_letters(database_url) == [second]
    with psycopg.connect(database_url) as conn:
        replayed = conn.execute("SELECT replay_run_id FROM dead_letter_files WHERE replayed_at IS NOT NULL")
        assert replayed.fetchall() == [("replay-1",)]
    # the same failure after a replay is a new dead letter
    assert record_dead_letter_file(database_url, DAY, KEY, '"e1"', "EMPTY_OBJECT").dead_letter_id != first.dead_letter_id


def test_an_unknown_kind_is_refused(database_url):
    with pytest.raises(ValueError, match="dead_letter_files.kind"):
        list_open_dead_letters(database_url, kind="files")
