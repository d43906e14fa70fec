"""The window's statistics merged from per-day statistics equal those of all readings at once."""

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.meter_day_stats import merge_window, meter_day_stats

START = datetime(2024, 4, 9, tzinfo=timezone.utc)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(0, 100, allow_nan=False), min_size=0, max_size=30), min_size=1, max_size=7))
def test_merged_window_matches_numpy_over_all_readings(days):
    rows = [
        {"meter_id": "SM-1", "reading_ts": START + timedelta(days=d, minutes=15 * i),
         "partition_date": (START + timedelta(days=d)).date(), "value_kw": v, "out_of_range": False}
        for d, values in enumerate(days) for i, v in enumerate(values)
    ]
    if not rows:
        return
    frame = pl.DataFrame(rows)
    merged = merge_window(meter_day_stats(frame.lazy())).collect().row(0, named=True)
    values = np.array([v for values in days for v in values])
    assert merged["window_n"] == len(values)
    assert merged["window_slots"] == len(values)
    assert merged["window_mean_kw"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
    if len(values) > 1:
        assert merged["window_m2"] / (len(values) - 1) == pytest.approx(values.var(ddof=1), rel=1e-9, abs=1e-12)


def test_unusable_readings_count_as_slots_but_not_as_statistics():
    frame = pl.DataFrame({
        "meter_id": ["SM-1"] * 3,
        "reading_ts": [START, START + timedelta(minutes=7), START + timedelta(minutes=15)],
        "partition_date": [date(2024, 4, 9)] * 3,
        "value_kw": [1.0, None, 500.0],
        "out_of_range": [False, False, True],
    })
    stats = meter_day_stats(frame.lazy()).collect().row(0, named=True)
    assert (stats["usable_n"], stats["usable_mean_kw"], stats["slots"]) == (1, 1.0, 2)
