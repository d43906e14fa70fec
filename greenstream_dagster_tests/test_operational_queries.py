"""Look-ups of one stored reading for the record journey (SPEC §9)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from greenstream_dagster.storage.operational.load import DayLoad, load_partition
from greenstream_dagster.storage.operational.queries import (
    fetch_reading,
    fetch_reading_by_record_id,
    fetch_rejected,
    fetch_revisions,
)
from greenstream_dagster.storage.operational.store import OperationalStore
from greenstream_dagster_tests.operational_frames import DAY, day_start, rejected, revisions, scored


@pytest.fixture
def loaded(database_url):
    readings = scored(meters=2)
    load_partition(OperationalStore(database_url), DayLoad(DAY, readings, rejected(), revisions(meter_id="SM-2", slot=4)))
    return database_url, readings


def test_a_reading_is_found_by_its_interval_key(loaded):
    url, readings = loaded
    ts = day_start(DAY) + timedelta(hours=1)
    found = fetch_reading(url, "SM-2", ts)
    expected = readings.filter((readings["meter_id"] == "SM-2") & (readings["reading_ts"] == ts)).row(0, named=True)
    assert {k: found[k] for k in expected} == expected
    assert found["loaded_at"] is not None
    assert fetch_reading(url, "SM-9", ts) is None


def test_a_timestamp_in_another_zone_finds_the_same_reading(loaded):
    url, _ = loaded
    local = datetime(2024, 4, 15, 3, 0, tzinfo=timezone(timedelta(hours=2)))  # 01:00Z
    assert fetch_reading(url, "SM-2", local)["reading_ts"] == day_start(DAY) + timedelta(hours=1)


def test_a_reading_is_found_by_its_record_id(loaded):
    url, readings = loaded
    meter_id, ts, value = readings.select("meter_id", "reading_ts", "value_raw").row(7)
    record_id = hashlib.sha256(f"{meter_id}|{ts:%Y-%m-%dT%H:%M:%SZ}|{value}".encode()).hexdigest()  # SPEC §2
    found = fetch_reading_by_record_id(url, record_id)
    assert (found["record_id"], found["meter_id"], found["reading_ts"]) == (record_id, meter_id, ts)
    assert fetch_reading_by_record_id(url, record_id, DAY)["record_id"] == record_id
    assert fetch_reading_by_record_id(url, record_id, DAY + timedelta(days=1)) is None


def test_revisions_and_rejected_rows_are_found(loaded):
    url, _ = loaded
    assert [r["record_id"] for r in fetch_revisions(url, "SM-2", day_start(DAY) + timedelta(hours=1))] == ["a" * 64]
    assert fetch_rejected(url, f"raw-data/{DAY}/readings.csv", 7, DAY)["reason"] == "INVALID_METER_ID"
    assert fetch_rejected(url, f"raw-data/{DAY}/readings.csv", 8, DAY) is None
