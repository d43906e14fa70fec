"""Estimation of short gaps (SPEC §3b), the pure rule: one test per clause, and a property.

Expected estimates are worked out here by hand or with plain Python arithmetic,
never by the rule itself.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.estimation import meter_estimates, short_gap_estimates
from greenstream_dagster.rules.schemas import ESTIMATE_COLUMNS

DAY = date(2024, 4, 15)
MIDNIGHT = datetime(2024, 4, 15, tzinfo=timezone.utc)
READING = {"meter_id": pl.Utf8, "reading_ts": pl.Datetime("us", "UTC"), "partition_date": pl.Date,
           "value_kw": pl.Float64, "out_of_range": pl.Boolean}


def at(slot: int, seconds: int = 0) -> datetime:
    return MIDNIGHT + timedelta(minutes=15 * slot, seconds=seconds)


def readings(*rows) -> pl.DataFrame:
    """Rows (meter, reading_ts, value_kw[, out_of_range]) of DAY."""
    full = [(m, ts, DAY, kw, *(rest or [False])) for m, ts, kw, *rest in rows]
    return pl.DataFrame(full, schema=READING, orient="row")


def every_slot_but(missing: set[int], meter: str = "SM-1", kw=lambda s: float(s)) -> list[tuple]:
    return [(meter, at(s), kw(s)) for s in range(96) if s not in missing]


def estimated(frame: pl.DataFrame, max_slots: int = 4) -> list[tuple]:
    out = short_gap_estimates(frame, DAY, max_slots).collect()
    assert out.schema == pl.Schema(ESTIMATE_COLUMNS)
    return out.select("meter_id", "slot_ts", "value_kw", "from_reading_ts", "to_reading_ts").rows()


def test_a_run_of_three_slots_is_interpolated_at_the_slot_starts():
    # 10 kW at 02:00 (slot 8), 18 kW at 03:00 (slot 12): 12, 14, 16 kW at 02:15, 02:30, 02:45.
    rows = every_slot_but({9, 10, 11}, kw=lambda s: {8: 10.0, 12: 18.0}.get(s, 1.0))
    assert estimated(readings(*rows)) == [
        ("SM-1", at(9), 12.0, at(8), at(12)), ("SM-1", at(10), 14.0, at(8), at(12)),
        ("SM-1", at(11), 16.0, at(8), at(12)),
    ]


def test_bounding_readings_off_the_slot_start_are_interpolated_at_their_own_time():
    # 00:32:00 → 1 kW, 01:03:00 → 2 kW; the slot start 00:45 is 13 of 31 minutes on: 1 + 13/31 kW.
    rows = [r for r in every_slot_but({2, 3, 4}) if r[1] not in (at(2), at(4))]
    rows += [("SM-1", at(2, 120), 1.0), ("SM-1", at(4, 180), 2.0)]
    assert estimated(readings(*rows)) == [("SM-1", at(3), round(1 + 13 / 31, 4), at(2, 120), at(4, 180))]


def test_values_are_rounded_half_to_even_to_four_places_on_the_exact_value():
    # From 1.234 to 1.235 kW over four slots: 1.23425 (a tie: to even 1.2342), 1.2345, 1.23475 (→ 1.2348).
    # Float arithmetic lands beside the ties (1.23425 is 1.2342499999… or 1.2342500…01 as a double).
    rows = every_slot_but({41, 42, 43}, kw=lambda s: {40: 1.234, 44: 1.235}.get(s, 1.0))
    assert [kw for _, _, kw, _, _ in estimated(readings(*rows))] == [1.2342, 1.2345, 1.2348]


def test_a_negative_tie_rounds_to_even_too():
    rows = every_slot_but({41, 42, 43}, kw=lambda s: {40: -1.234, 44: -1.235}.get(s, 1.0))
    assert [kw for _, _, kw, _, _ in estimated(readings(*rows))] == [-1.2342, -1.2345, -1.2348]


def test_a_run_longer_than_the_setting_stays_missing_and_the_setting_moves_the_limit():
    rows = readings(*every_slot_but({20, 21, 22, 23, 24}))
    assert estimated(rows, 4) == []
    assert len(estimated(rows, 5)) == 5
    assert len(estimated(readings(*every_slot_but({20, 21, 22, 23})), 4)) == 4


@pytest.mark.parametrize("missing", [{0}, {0, 1, 2}, {95}, {93, 94, 95}])
def test_a_run_at_the_edge_of_the_day_is_not_estimated(missing):
    assert estimated(readings(*every_slot_but(missing))) == []


def test_a_bounding_slot_with_only_an_unusable_reading_does_not_bound_the_run():
    rows = every_slot_but({30, 31, 40, 41})
    rows = [(m, ts, kw, ts in (at(29), at(42))) for m, ts, kw in rows]  # out of range on one side of each
    assert estimated(readings(*rows)) == []


def test_a_null_value_does_not_bound_a_run_but_fills_its_slot():
    rows = [(m, ts, None if ts == at(50) else kw) for m, ts, kw in every_slot_but({51})]
    assert estimated(readings(*rows)) == []  # slot 50 is placeable (not a gap), slot 51 has no usable left bound


def test_a_slot_with_a_placeable_unusable_reading_is_no_gap():
    rows = [(m, ts, kw, ts == at(60)) for m, ts, kw in every_slot_but({61})]
    assert estimated(readings(*rows)) == []  # 60 is not missing; 61's left bound is unusable


def test_in_a_slot_with_several_readings_the_nearest_usable_one_bounds_the_run():
    rows = [r for r in every_slot_but({70}) if r[1] not in (at(69), at(71))]
    rows += [("SM-1", at(69), 5.0), ("SM-1", at(69, 300), 7.0), ("SM-1", at(69, 600), 50.0, True),
             ("SM-1", at(71), 9.0), ("SM-1", at(71, 60), 100.0)]
    # From 7 kW at 17:20 to 9 kW at 17:45: at 17:30, 10 of 25 minutes on.
    assert estimated(readings(*rows)) == [("SM-1", at(70), round(7 + 2 * 10 / 25, 4), at(69, 300), at(71))]


def test_zero_switches_estimation_off():
    assert estimated(readings(*every_slot_but({5})), 0) == []


def test_meters_are_estimated_apart_and_other_days_are_ignored():
    rows = every_slot_but({10}, "SM-1") + every_slot_but(set(range(0, 95)), "SM-2")
    frame = pl.concat([readings(*rows), readings(("SM-3", at(3), 1.0), ("SM-3", at(5), 3.0)).with_columns(
        pl.lit(DAY + timedelta(days=1)).alias("partition_date"))])
    assert estimated(frame) == [("SM-1", at(10), 10.0, at(9), at(11))]


def test_meter_estimates_count_slots_and_energy():
    rows = readings(*every_slot_but({9, 10, 11}, kw=lambda s: {8: 10.0, 12: 18.0}.get(s, 1.0)))
    per_meter = meter_estimates(short_gap_estimates(rows, DAY, 4)).collect()
    assert per_meter.rows() == [("SM-1", 3, (12.0 + 14.0 + 16.0) * 0.25)]


# -- property -------------------------------------------------------------------------------

slot_contents = st.one_of(
    st.none(),  # no placeable row
    st.tuples(st.integers(0, 899), st.one_of(st.none(), st.integers(-5000, 150_000).map(lambda w: w / 1000)),
              st.booleans()),  # (seconds into the slot, value_kw, out_of_range)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(slot_contents, min_size=96, max_size=96), min_size=1, max_size=3),
       st.integers(0, 10))
def test_estimates_fill_only_missing_slots_and_lie_between_their_bounds(days, max_slots):
    rows = [(f"SM-{m}", at(s, c[0]), c[1], c[2]) for m, day in enumerate(days) for s, c in enumerate(day)
            if c is not None]
    frame = readings(*rows).sample(fraction=1.0, shuffle=True, seed=len(rows))
    out = short_gap_estimates(frame, DAY, max_slots).collect()
    usable = {(m, ts): kw for m, ts, kw, oor in rows if kw is not None and not oor}
    placeable_slots = {(m, ts.replace(second=0) - timedelta(minutes=ts.minute % 15)) for m, ts, _, _ in rows}
    assert out.select("meter_id", "slot_ts").is_duplicated().sum() == 0
    for meter, slot_ts, kw, from_ts, to_ts in out.select(
            "meter_id", "slot_ts", "value_kw", "from_reading_ts", "to_reading_ts").iter_rows():
        assert (meter, slot_ts) not in placeable_slots
        assert from_ts < slot_ts < to_ts and to_ts - from_ts < timedelta(minutes=15 * (max_slots + 2))
        low, high = sorted((usable[(meter, from_ts)], usable[(meter, to_ts)]))
        assert low <= kw <= high
    # Every short interior run bounded by usable slots is estimated: count them independently.
    expected = 0
    for day in days:
        filled = [c is not None for c in day]
        good = [c is not None and c[1] is not None and not c[2] for c in day]
        s = 0
        while s < 96:
            if filled[s]:
                s += 1
                continue
            end = s
            while end < 96 and not filled[end]:
                end += 1
            if s > 0 and end < 96 and end - s <= max_slots and good[s - 1] and good[end]:
                expected += end - s
            s = end
    assert out.height == expected
