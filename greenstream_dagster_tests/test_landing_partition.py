"""SPEC §1: a partition's files are read together; a bad file is set aside, the others go on."""

import gzip
from datetime import date, datetime, timezone

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_partition import read_landing_partition

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
