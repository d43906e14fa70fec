"""Versioned migrations of the operational store: applied once, in order, under a lock."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timezone

import psycopg
import pytest

from greenstream_dagster.storage.operational.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    apply_migrations,
    discover_migrations,
)

TABLES = ("meter_readings", "rejected_readings", "reading_revisions", "dead_letter_files",
          "meter_presence", "silent_meters", "estimated_readings")


def _schema_snapshot(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()


def test_a_fresh_database_gets_every_migration(empty_database_url):
    versions = [m.version for m in discover_migrations()]
    assert apply_migrations(empty_database_url) == versions
    with psycopg.connect(empty_database_url) as conn:
        recorded = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        partitioned = {n for (n,) in conn.execute(
            "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid")}
    assert recorded == versions
    assert partitioned == set(TABLES)


def test_applying_twice_changes_nothing(empty_database_url):
    apply_migrations(empty_database_url)
    before = _schema_snapshot(empty_database_url)
    assert apply_migrations(empty_database_url) == []
    assert _schema_snapshot(empty_database_url) == before


def test_two_processes_starting_together_apply_each_migration_once(empty_database_url):
    results = []
    threads = [threading.Thread(target=lambda: results.append(apply_migrations(empty_database_url))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=len) == [[], [], [m.version for m in discover_migrations()]]


def test_an_applied_migration_that_was_edited_is_an_error(empty_database_url, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    apply_migrations(empty_database_url, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match=first.name):
        apply_migrations(empty_database_url, folder)


def test_a_new_migration_is_applied_after_the_others(empty_database_url, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    apply_migrations(empty_database_url, folder)
    (folder / "9999_extra_table.sql").write_text("CREATE TABLE extra (n int);")
    assert apply_migrations(empty_database_url, folder) == [9999]


def test_meter_readings_has_the_columns_of_the_contract(database_url):
    columns = {(t, c): (d, n) for t, c, d, n in _schema_snapshot(database_url)}
    expected = {  # SPEC §8
        "record_id": "text", "meter_id": "text", "reading_ts": "timestamp with time zone",
        "partition_date": "date", "value_raw": "text", "unit_raw": "text", "value_kw": "double precision",
        "tariff_period": "text", "season": "text", "validation_errors": "ARRAY", "out_of_range": "boolean",
        "revised": "boolean", "is_spike": "boolean", "meter_stuck": "boolean", "meter_gap": "boolean",
        "quality_score": "smallint", "quality_grade": "text", "source_key": "text", "source_line": "bigint",
        "loaded_at": "timestamp with time zone",
    }
    assert {c: d for (t, c), (d, _) in columns.items() if t == "meter_readings"} == expected
    rejected = [c for (t, c) in columns if t == "rejected_readings"]
    assert rejected[:5] == ["partition_date", "source_key", "source_line", "raw_line", "reason"]


def _insert_reading(conn, meter_id: str, ts: datetime, day) -> None:
    conn.execute(
        "INSERT INTO meter_readings (record_id, meter_id, reading_ts, partition_date, tariff_period, season, "
        "validation_errors, out_of_range, revised, is_spike, meter_stuck, meter_gap, quality_score, "
        "quality_grade, source_key, source_line) VALUES (%s, %s, %s, %s, 'PEAK', 'SPRING', '{}', false, "
        "false, false, false, false, 100, 'A', 'raw-data/k.csv', 2)",
        ("0" * 64, meter_id, ts, day),
    )


def test_the_interval_key_is_unique_and_partition_date_is_the_utc_day(database_url):
    ts = datetime(2024, 4, 15, 23, 45, tzinfo=timezone.utc)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE meter_readings_p20240415 PARTITION OF meter_readings "
                     "FOR VALUES FROM ('2024-04-15') TO ('2024-04-16')")
        _insert_reading(conn, "SM-1", ts, ts.date())
        with pytest.raises(psycopg.errors.UniqueViolation):
            _insert_reading(conn, "SM-1", ts, ts.date())
        with pytest.raises(psycopg.errors.CheckViolation, match="meter_readings_partition_is_utc_day"):
            _insert_reading(conn, "SM-2", ts.replace(day=16), ts.date())
