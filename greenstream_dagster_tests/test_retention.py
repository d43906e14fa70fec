"""90-day retention (SPEC §5): whole day partitions are dropped, never rows deleted."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from greenstream_dagster.storage.operational.dead_letters import list_open_dead_letters, record_dead_letter_file
from greenstream_dagster.storage.operational.load import DayLoad, load_partition
from greenstream_dagster.storage.operational.retention import apply_retention
from greenstream_dagster.storage.operational.store import OperationalStore
from greenstream_dagster_tests.operational_frames import DAY, no_revisions, rejected, revisions, scored

TODAY = DAY


def _load(url, day, meters=1):
    load_partition(OperationalStore(url), DayLoad(day, scored(day, meters=meters), rejected(day), revisions(day)))


def _days_with_rows(url) -> list:
    with psycopg.connect(url) as conn:
        return [d for (d,) in conn.execute("SELECT DISTINCT partition_date FROM meter_readings ORDER BY 1")]


def _row_versions(url) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT tableoid::regclass::text, ctid::text, xmin::text FROM meter_readings ORDER BY 1, 2"
        ).fetchall()


def test_days_older_than_the_limit_lose_their_partitions_in_every_table(database_url):
    days = [TODAY - timedelta(days=n) for n in (100, 91, 90, 1)]
    for day in days:
        _load(database_url, day)
    record_dead_letter_file(database_url, days[0], f"raw-data/{days[0]}/bad.csv", "etag", "EMPTY_OBJECT")

    dropped = apply_retention(database_url, TODAY, retention_days=90)

    old, older = f"{days[0]:%Y%m%d}", f"{days[1]:%Y%m%d}"
    assert dropped == [
        f"dead_letter_files_p{old}", f"meter_readings_p{old}", f"reading_revisions_p{old}", f"rejected_readings_p{old}",
        f"meter_readings_p{older}", f"reading_revisions_p{older}", f"rejected_readings_p{older}",
    ]
    assert _days_with_rows(database_url) == [days[2], days[3]]  # exactly 90 days old is kept
    assert list_open_dead_letters(database_url) == []
    with psycopg.connect(database_url) as conn:
        for table in ("rejected_readings", "reading_revisions"):
            kept = conn.execute(f"SELECT DISTINCT partition_date FROM {table} ORDER BY 1").fetchall()
            assert kept == [(days[2],), (days[3],)]


def test_rows_of_kept_days_are_not_touched(database_url):
    for n in (120, 30, 0):
        _load(database_url, TODAY - timedelta(days=n), meters=2)
    kept_before = [r for r in _row_versions(database_url) if not r[0].endswith(f"{TODAY - timedelta(days=120):%Y%m%d}")]
    apply_retention(database_url, TODAY, retention_days=90)
    assert _row_versions(database_url) == kept_before
    with psycopg.connect(database_url) as conn:
        deleted = conn.execute("SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables "
                               "WHERE relname LIKE 'meter_readings_p%'").fetchone()[0]
    assert deleted == 0


def test_retention_is_idempotent(database_url):
    _load(database_url, TODAY - timedelta(days=95))
    assert len(apply_retention(database_url, TODAY, retention_days=90)) == 3
    assert apply_retention(database_url, TODAY, retention_days=90) == []


def test_the_limit_is_configurable(database_url):
    for n in (8, 7, 6):
        _load(database_url, TODAY - timedelta(days=n))
    apply_retention(database_url, TODAY, retention_days=7)
    assert _days_with_rows(database_url) == [TODAY - timedelta(days=7), TODAY - timedelta(days=6)]


def test_a_day_with_many_rows_is_dropped_as_fast_as_an_empty_one(database_url):
    big_day = TODAY - timedelta(days=91)
    load_partition(OperationalStore(database_url), DayLoad(big_day, scored(big_day, meters=2_000), rejected(big_day), no_revisions()))
    started = time.perf_counter()
    dropped = apply_retention(database_url, TODAY, retention_days=90)
    elapsed = time.perf_counter() - started
    assert f"meter_readings_p{big_day:%Y%m%d}" in dropped
    assert elapsed < 2.0, f"dropping a 192,000-row day took {elapsed:.2f} s"


def test_a_limit_below_one_day_is_refused(database_url):
    with pytest.raises(ValueError, match="GREENSTREAM_RETENTION_DAYS"):
        apply_retention(database_url, TODAY, retention_days=0)
