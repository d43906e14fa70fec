"""The scored asset waits, for a bounded time, for window days that landed but are not standardized yet."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from greenstream_dagster.defs.readings.assets import WINDOW_WAIT_RETRIES, _schema_check, _wait_for_window
from greenstream_dagster.rules.schemas import ScoredSchema
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster_tests.operational_frames import scored


class Context:
    def __init__(self, retry_number=0):
        self.retry_number = retry_number
        self.log = dg.get_dagster_logger()


def test_window_day_with_landing_files_is_waited_for(s3_client, bucket):
    put_object(s3_client, bucket, "raw-data/2024-04-14/a.csv", b"meter_id,timestamp,value,unit\n")
    with pytest.raises(dg.RetryRequested):
        _wait_for_window(Context(), s3_client, bucket, [date(2024, 4, 14)])
    # After the bounded wait the day is scored anyway (the late-data cascade re-scores it later).
    _wait_for_window(Context(WINDOW_WAIT_RETRIES), s3_client, bucket, [date(2024, 4, 14)])


def test_window_day_without_data_is_a_day_without_data(s3_client, bucket):
    _wait_for_window(Context(), s3_client, bucket, [date(2024, 4, 13)])  # nothing landed: no wait


def test_the_schema_check_fails_on_a_repeated_interval_key_or_a_bad_value():
    """The blocking check: pandera's column checks and one reading per (meter_id, reading_ts)."""
    good = scored(meters=3).sort("meter_id", "reading_ts")
    assert _schema_check(ScoredSchema, good, "scored_readings", "scored_schema").passed
    assert _schema_check(ScoredSchema, good.reverse(), "scored_readings", "scored_schema").passed  # order is free
    repeated = pl.concat([good, good.slice(5, 1).with_columns(quality_score=pl.lit(7, pl.Int32))])
    result = _schema_check(ScoredSchema, repeated, "scored_readings", "scored_schema")
    assert not result.passed and "1 interval key(s) on more than one row" in result.metadata["failures"].value
    bad = good.with_columns(quality_grade=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("E")).otherwise("quality_grade"))
    result = _schema_check(ScoredSchema, bad, "scored_readings", "scored_schema")
    assert not result.passed and "quality_grade" in result.metadata["failures"].value
