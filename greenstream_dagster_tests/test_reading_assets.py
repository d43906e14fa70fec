"""The scored asset waits, for a bounded time, for window days that landed but are not standardized yet."""

from datetime import date

import dagster as dg
import pytest

from greenstream_dagster.defs.reading_assets import WINDOW_WAIT_RETRIES, _wait_for_window
from greenstream_dagster.storage.landing import put_object


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
