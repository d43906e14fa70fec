"""SPEC §2: one reading per (meter_id, reading_ts); the last delivered row wins; revisions audited once."""

import hashlib
from datetime import timedelta

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.standardize import standardize
from greenstream_dagster_tests.builders import ARRIVAL, DAY, HEADER, rows

TS = "2024-04-15T10:00:00Z"


def deliver(*files):
    """files: (key, minutes after ARRIVAL, text) → Standardized of all of them."""
    frames = [rows(HEADER + text, key=key, modified=ARRIVAL + timedelta(minutes=m)) for key, m, text in files]
    return standardize(pl.concat(frames), DAY, RulesConfig())


def test_last_row_in_a_file_wins():
    result = deliver(("raw-data/2024-04-15/a.csv", 0, f"SM-1,{TS},1,kW\nSM-1,{TS},2,kW\n"))
    assert result.readings.select("value_raw", "source_line", "revised").row(0) == ("2", 3, True)


def test_later_last_modified_wins_over_key_order():
    result = deliver(
        ("raw-data/2024-04-15/b.csv", 0, f"SM-1,{TS},1,kW\n"),
        ("raw-data/2024-04-15/a.csv", 5, f"SM-1,{TS},2,kW\n"),
    )
    assert result.readings.select("value_raw", "source_key").row(0) == ("2", "raw-data/2024-04-15/a.csv")


def test_same_last_modified_falls_back_to_key_byte_order():
    result = deliver(
        ("raw-data/2024-04-15/b.csv", 0, f"SM-1,{TS},1,kW\n"),
        ("raw-data/2024-04-15/B.csv", 0, f"SM-1,{TS},2,kW\n"),  # "B" < "b" in byte order
    )
    assert result.readings["value_raw"].to_list() == ["1"]


def test_same_reading_delivered_again_is_not_a_revision():
    result = deliver(
        ("raw-data/2024-04-15/a.csv", 0, f"SM-1,{TS},1,kW\n"),
        ("raw-data/2024-04-15/b.csv", 1, f"SM-1,{TS},1,kW\n"),
    )
    assert result.readings.select("revised", "source_key").row(0) == (False, "raw-data/2024-04-15/b.csv")
    assert result.revisions.height == 0


def test_each_distinct_losing_content_is_one_revision_with_its_latest_copy():
    result = deliver(
        ("raw-data/2024-04-15/a.csv", 0, f"SM-1,{TS},1,kW\nSM-1,{TS},2,kW\nSM-1,{TS},1,kW\n"),
        ("raw-data/2024-04-15/b.csv", 1, f"SM-1,{TS},3,kW\nSM-1,{TS},2,kW\n"),
        ("raw-data/2024-04-15/c.csv", 2, f"SM-1,{TS},3,kW\n"),
    )
    winner = result.readings.row(0, named=True)
    assert (winner["value_raw"], winner["source_key"], winner["revised"]) == ("3", "raw-data/2024-04-15/c.csv", True)
    revisions = result.revisions.sort("value_raw")
    assert revisions.select("value_raw", "source_key", "source_line").rows() == [
        ("1", "raw-data/2024-04-15/a.csv", 4),
        ("2", "raw-data/2024-04-15/b.csv", 3),
    ]
    winner_id = hashlib.sha256(f"SM-1|{TS}|3".encode()).hexdigest()  # SPEC §2, computed here
    assert "record_id" not in result.readings.columns  # derived where stored (PostgreSQL)
    assert (revisions["superseded_by"] == winner_id).all()


def test_different_timestamp_forms_of_the_same_instant_share_the_key():
    result = deliver(("raw-data/2024-04-15/a.csv", 0, f"SM-1,{TS},1,kW\nSM-1,2024-04-15 12:00:00+02:00,1,kW\n"))
    assert result.readings.height == 1
    assert result.revisions.height == 0  # same record_id: same meter, instant and value text


def test_other_meters_and_times_are_independent():
    result = deliver(("raw-data/2024-04-15/a.csv", 0, f"SM-1,{TS},1,kW\nSM-2,{TS},2,kW\nSM-1,2024-04-15T10:15:00Z,3,kW\n"))
    assert result.readings.height == 3
    assert not result.readings["revised"].any()


def test_quarantined_rows_never_compete_for_a_key():
    result = deliver(("raw-data/2024-04-15/a.csv", 0, f"SM-1,{TS},1,kW\nSM-1,{TS},2\n"))
    assert result.readings.select("value_raw", "revised").row(0) == ("1", False)
    assert result.rejected["reason"].to_list() == ["MALFORMED_ROW"]
