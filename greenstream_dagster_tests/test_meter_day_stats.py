"""The window's statistics merged from per-day statistics equal those of all readings at once."""

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.meter_day_stats import merge_window, meter_day_stats

START = datetime(2024, 4, 9, tzinfo=timezone.utc)


# value_kw as standardized: at most four decimal places (SPEC §2).
KW = st.integers(0, 1_000_000).map(lambda units: units / 10_000)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(KW, min_size=0, max_size=30), min_size=1, max_size=7))
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


@settings(max_examples=30, deadline=None)
@given(st.lists(KW, min_size=2, max_size=96), st.randoms(use_true_random=False))
def test_a_days_statistics_have_the_same_bits_in_any_order_of_its_readings(values, random):
    """A meter's readings reach the rules in no fixed order (a day split into shards, a re-done
    meter appended): its mean and spread must not depend on it, to the last bit."""
    def stats(kw):
        rows = pl.DataFrame({"meter_id": ["SM-1"] * len(kw), "partition_date": [START.date()] * len(kw),
                             "reading_ts": [START + timedelta(minutes=15 * i) for i in range(len(kw))],
                             "value_kw": kw, "out_of_range": [False] * len(kw)})
        return meter_day_stats(rows.lazy()).collect().select("usable_mean_kw", "usable_m2").row(0)

    shuffled = list(values)
    random.shuffle(shuffled)
    assert stats(shuffled) == stats(values)


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
