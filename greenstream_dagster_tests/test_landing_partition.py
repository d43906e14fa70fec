"""SPEC §1: a partition's files are read together; a bad file is set aside, the others go on."""

import gzip
import threading
import time
from datetime import date, datetime, timezone

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_partition import ByteBudget, read_landing_partition
from greenstream_dagster.rules.reading_limits import ReadingLimits

DAY = date(2024, 4, 15)
T = datetime(2024, 4, 15, 23, tzinfo=timezone.utc)
GOOD = b"meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n"


def test_bad_files_are_dead_letters_and_bad_keys_are_ignored_while_good_files_are_read():
    objects = {
        "raw-data/2024-04-15/a.csv": GOOD,
        "raw-data/2024-04-15/deep/b.csv.gz": gzip.compress(GOOD),
        "raw-data/2024-04-15/empty.csv": b"",
        "raw-data/2024-04-15/bad.csv.gz": b"not gzip",
        "raw-data/2024-04-15/header.csv": b"id,ts\n1,2\n",
        "raw-data/2024-04-15/notes.txt": b"hello",
    }
    listed = [LandingObject(k, len(v), f"etag-{i}", T) for i, (k, v) in enumerate(objects.items())]
    partition = read_landing_partition(listed, DAY, objects.__getitem__)
    assert partition.rows.height == 2
    assert sorted(partition.rows["source_key"].to_list()) == ["raw-data/2024-04-15/a.csv", "raw-data/2024-04-15/deep/b.csv.gz"]
    reasons = {o.key: r for o, r in partition.dead_letters}
    assert reasons["raw-data/2024-04-15/empty.csv"] == "empty object"
    assert reasons["raw-data/2024-04-15/bad.csv.gz"].startswith("corrupt gzip")
    assert "header" in reasons["raw-data/2024-04-15/header.csv"]
    assert [k for k, _ in partition.ignored] == ["raw-data/2024-04-15/notes.txt"]
    assert partition.csv_bytes == len(GOOD) + len(gzip.compress(GOOD))


def test_an_empty_partition_has_no_rows():
    partition = read_landing_partition([], DAY, lambda key: b"")
    assert partition.rows.height == 0 and partition.dead_letters == []


def test_a_plain_file_over_the_object_limit_is_a_dead_letter_without_being_fetched():
    key = "raw-data/2024-04-15/huge.csv"
    fetched = []

    def fetch(k):
        fetched.append(k)
        return GOOD

    listed = [LandingObject(key, 10_000, "e", T), LandingObject("raw-data/2024-04-15/a.csv", len(GOOD), "f", T)]
    partition = read_landing_partition(listed, DAY, fetch, limits=ReadingLimits(max_object_bytes=1000))
    assert fetched == ["raw-data/2024-04-15/a.csv"]
    assert [(o.key, "GREENSTREAM_MAX_OBJECT_BYTES" in r) for o, r in partition.dead_letters] == [(key, True)]


def test_the_read_budget_bounds_the_bytes_held_at_once_across_threads():
    """Eight threads, files of 600 bytes, a budget of 1,000 bytes: never two files at once."""
    held, peak, lock = [0], [0], threading.Lock()
    budget_limits = ReadingLimits(read_budget_bytes=1000)
    body = GOOD + b"SM-2,2024-04-15T00:00:00Z,1,kW\n" * 18
    objects = {f"raw-data/2024-04-15/f{i}.csv": body for i in range(8)}

    def fetch(key):
        with lock:
            held[0] += len(body)
            peak[0] = max(peak[0], held[0])
        time.sleep(0.02)
        with lock:
            held[0] -= len(body)
        return objects[key]

    listed = [LandingObject(k, len(v), k, T) for k, v in objects.items()]
    partition = read_landing_partition(listed, DAY, fetch, limits=budget_limits)
    assert len(partition.files) == 8 and 600 <= len(body) <= 1000
    assert peak[0] == len(body)


def test_byte_budget_lets_a_claim_larger_than_the_whole_budget_run_alone():
    budget = ByteBudget(100)
    with budget.claim(10_000):
        assert budget.held == 100
    assert budget.held == 0
