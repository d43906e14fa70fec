"""A day loaded in parts, one meter shard at a time (SPEC §10): the rows of a whole-day load, a digest
per part, only the changed readings sent again, and a load cut short in any part leaves the day as it was."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from greenstream_dagster.rules.meter_shards import route
from greenstream_dagster.storage.operational.changed_rows import PreviousLoad
from greenstream_dagster.storage.operational.load import DayLoad, LoadPart, load_partition
from greenstream_dagster.storage.operational.store import OperationalStore
from greenstream_dagster_tests.operational_frames import DAY, no_revisions, rejected, scored
from greenstream_dagster_tests.test_changed_rows_load import rescore
from greenstream_dagster_tests.test_operational_load import row_versions, stored

PARTS = 3


def in_parts(readings: pl.DataFrame, quarantine: pl.DataFrame, asked: list[int] | None = None, fail_at: int | None = None):
    """read_part of the frames split by meter shard (the quarantine rows name no meter: part 0)."""
    shards = route(readings, PARTS)
    quarantined = {k: quarantine if k == 0 else quarantine.clear() for k in range(PARTS)}

    def read(index: int) -> LoadPart:
        if asked is not None:
            asked.append(index)
        if index == fail_at:
            raise ConnectionError("the worker lost its connection to S3")
        return LoadPart(shards[index], quarantined[index], no_revisions())
    return read


def test_a_day_in_parts_stores_what_a_whole_day_load_stores_and_sends_only_changes_again(database_url):
    readings = scored(meters=12)
    assert all(part.height for part in route(readings, PARTS).values())  # every part has meters
    digests: dict[int, pl.DataFrame] = {}
    asked: list[int] = []

    first = load_partition(OperationalStore(database_url), DayLoad(
        DAY, parts=PARTS, read_part=in_parts(readings, rejected(), asked), digest_name="one",
        keep_digest=lambda part, digest: digests.__setitem__(part, digest)))

    assert asked == [0, 1, 2] and first.parts == PARTS
    assert first.inserted == readings.height and first.rejected_rows == 2
    assert stored(database_url).equals(readings.sort("meter_id", "reading_ts").with_columns(
        pl.col("quality_score").cast(stored(database_url).schema["quality_score"])))
    assert sorted(digests) == [0, 1, 2] and sum(d.height for d in digests.values()) == readings.height

    meter = route(readings, PARTS)[1]["meter_id"][0]  # one meter of part 1 rescored
    changed = rescore(readings, pl.col("meter_id") == meter)
    before = row_versions(database_url)
    again = load_partition(OperationalStore(database_url), DayLoad(
        DAY, parts=PARTS, read_part=in_parts(changed, rejected()), digest_name="two",
        previous=PreviousLoad("one", parts=PARTS, read_part=digests.__getitem__)))

    assert (again.readings_copied, again.updated, again.inserted, again.deleted) == (96, 96, 0, 0)
    after = row_versions(database_url)
    assert {key for key in after if after[key] != before[key]} == {key for key in before if key[0] == meter}


def test_a_load_cut_short_in_a_later_part_leaves_the_day_as_it_was(database_url):
    readings = scored(meters=12)
    load_partition(OperationalStore(database_url), DayLoad(
        DAY, parts=PARTS, read_part=in_parts(readings, rejected()), digest_name="one"))
    before = row_versions(database_url)

    with pytest.raises(ConnectionError):  # parts 0 and 1 were copied when part 2 failed
        load_partition(OperationalStore(database_url), DayLoad(
            DAY, parts=PARTS, read_part=in_parts(rescore(readings, pl.lit(True)), rejected(lines=(3,)), fail_at=2),
            digest_name="two"))

    assert row_versions(database_url) == before


def test_a_first_load_cut_short_leaves_no_day(database_url):
    """On a day never loaded, the parts go to a table built aside: cut short, no reading appears,
    and the next load of the day is a first load again."""
    day = DAY + timedelta(days=1)
    readings = scored(day=day, meters=12)
    with pytest.raises(ConnectionError):
        load_partition(OperationalStore(database_url), DayLoad(
            day, parts=PARTS, read_part=in_parts(readings, rejected(day=day), fail_at=1), digest_name="one"))
    assert stored(database_url, day).height == 0

    done = load_partition(OperationalStore(database_url), DayLoad(
        day, parts=PARTS, read_part=in_parts(readings, rejected(day=day)), digest_name="two"))
    assert done.inserted == readings.height and stored(database_url, day).height == readings.height


def test_a_load_needs_its_frames_or_its_parts():
    with pytest.raises(ValueError, match="three frames"):
        DayLoad(DAY)
    with pytest.raises(ValueError, match="three frames"):
        DayLoad(DAY, scored(), rejected(), no_revisions(), parts=2)
