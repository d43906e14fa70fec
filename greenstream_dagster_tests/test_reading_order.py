"""The order check that lets the stores skip a sort (rules/reading_order.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from greenstream_dagster.rules.reading_order import duplicate_keys, in_order, merge_disjoint, sorted_by

T0 = datetime(2024, 4, 15, tzinfo=timezone.utc)
rows = st.lists(st.tuples(st.sampled_from(["SM-1", "SM-10", "SM-2", "SM-9"]), st.integers(0, 5)), max_size=30)


def frame(pairs) -> pl.DataFrame:
    return pl.DataFrame({"meter_id": [m for m, _ in pairs], "reading_ts": [T0 + timedelta(minutes=15 * k) for _, k in pairs]},
                        schema={"meter_id": pl.Utf8, "reading_ts": pl.Datetime("us", "UTC")})


@given(rows)
def test_in_order_says_whether_sorting_would_change_the_rows(pairs):
    f = frame(pairs)
    assert in_order(f, ["meter_id", "reading_ts"]) == f.equals(f.sort("meter_id", "reading_ts"))
    assert sorted_by(f, ["meter_id", "reading_ts"]).equals(f.sort("meter_id", "reading_ts"))


def test_a_null_key_is_out_of_order():
    f = pl.DataFrame({"meter_id": ["SM-1", None, "SM-2"]})
    assert not in_order(f, ["meter_id"])


@given(rows, st.booleans())
def test_duplicate_keys_are_the_keys_on_more_than_one_row(pairs, sort_first):
    """Sorted or not, the duplicates found are exactly those counted here in Python."""
    f = frame(pairs)
    f = f.sort("meter_id", "reading_ts") if sort_first else f
    counted = {}
    for key in f.rows():
        counted[key] = counted.get(key, 0) + 1
    assert duplicate_keys(f, ["meter_id", "reading_ts"]).rows() == sorted(k for k, n in counted.items() if n > 1)
    assert in_order(f, ["meter_id", "reading_ts"], strictly=True) == (
        in_order(f, ["meter_id", "reading_ts"]) and all(n == 1 for n in counted.values()))


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), max_size=60, unique=True), st.sets(st.integers(0, 40)))
def test_merge_disjoint_equals_sorting_the_two_frames_together(pairs, second_meters):
    """Readings of some meters split off and merged back: the rows of a stable sort by meter
    (each meter's rows in their order), flagged sorted."""
    f = frame([(f"SM-{m:02d}", k) for m, k in sorted(pairs)])
    in_second = pl.col("meter_id").is_in([f"SM-{m:02d}" for m in second_meters])
    first, second = f.filter(~in_second), f.filter(in_second)
    merged = merge_disjoint(first, second, "meter_id")
    assert merged.equals(pl.concat([first, second]).sort("meter_id", maintain_order=True))
    assert merged["meter_id"].flags["SORTED_ASC"]
