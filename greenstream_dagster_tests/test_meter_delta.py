"""Redoing only the touched meters gives what redoing the whole day gives (rules/meter_delta.py).

Random days of a few objects — overlapping deliveries (revisions), bad rows, bad
values — then random changes: objects added, replaced by other bytes or a later
delivery, removed. The merged result must equal standardize()/score_partition()
of the whole new day, frame by frame (the rows' order aside where a frame has none).

Floating-point statistics (a meter's mean, spread, variance) are compared to
1e-12 relative: Polars adds up a meter's readings in the order the frame holds
them, which is not fixed even between two whole-day runs of the same rows, so
their last bits vary between any two runs. Everything else must be identical.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.meter_delta import (
    Basis,
    changed_keys,
    merge_scored,
    merge_standardized,
    rows_to_redo,
    touched_meters,
)
from greenstream_dagster.rules.score import Scored, score_partition
from greenstream_dagster.rules.standardize import standardize
from greenstream_dagster_tests.builders import ARRIVAL, DAY, HEADER, rows

CONFIG = RulesConfig(partitions_start=DAY)
START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)

line = st.tuples(
    st.sampled_from(["SM-1", "SM-2", "SM-3", "SM-4", "SM-5", "bad-id", ""]),
    st.integers(0, 5),  # slot
    st.sampled_from(["1.5", "2", "0.25", "abc", "", "1e3"]),
    st.sampled_from(["kW", "W", "kWh"]),
)
obj = st.lists(line, min_size=0, max_size=12)


def text(lines) -> str:
    body = "".join(f"{m},{(START + timedelta(minutes=15 * s)):%Y-%m-%dT%H:%M:%SZ},{v},{u}\n" for m, s, v, u in lines)
    return HEADER + body + ("SM-9,broken\n" if len(lines) % 3 == 0 else "")


def day_rows(objects: dict[str, tuple[list, int]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Raw rows of the objects (key → (lines, minutes after ARRIVAL)) and their `files` frame."""
    frames, files = [], []
    for key, (lines, late) in sorted(objects.items()):
        modified = ARRIVAL + timedelta(minutes=late)
        frames.append(rows(text(lines), key=f"raw-data/{DAY}/{key}.csv", modified=modified))
        files.append((f"raw-data/{DAY}/{key}.csv", str(hash((tuple(lines), late))), len(lines), modified, None))
    files = pl.DataFrame(files, orient="row", schema={"key": pl.Utf8, "etag": pl.Utf8, "size": pl.Int64,
                                                       "last_modified": pl.Datetime("us", "UTC"),
                                                       "dead_letter_reason": pl.Utf8})
    return pl.concat(frames), files


def same(a: pl.DataFrame, b: pl.DataFrame, keys: list[str]) -> bool:
    a, b = a.sort(keys), b.select(a.columns).sort(keys)
    floats = [c for c, t in a.schema.items() if t == pl.Float64 and c != "value_kw"]
    if not a.drop(floats).equals(b.drop(floats)):
        return False
    return all(
        a.select(((pl.col(c) - b[c]).abs() <= 1e-12 * pl.max_horizontal(pl.col(c).abs(), b[c].abs(), 1.0))
                 .fill_null(pl.col(c).is_null() & b[c].is_null()).all()).item()
        for c in floats
    )


@settings(max_examples=60, deadline=None)
@given(before=st.dictionaries(st.sampled_from("abcd"), st.tuples(obj, st.integers(0, 3)), min_size=1, max_size=4),
       after=st.dictionaries(st.sampled_from("abcde"), st.tuples(obj, st.integers(0, 3)), min_size=1, max_size=5))
def test_redoing_the_touched_meters_equals_redoing_the_day(before, after):
    old_rows, old_files = day_rows(before)
    new_rows, new_files = day_rows(after)
    previous = standardize(old_rows, DAY, CONFIG)
    changed = changed_keys(Basis.of(old_files, CONFIG).frame("v1"), Basis.of(new_files, CONFIG))
    touched = touched_meters(new_rows, previous, changed)
    redo = rows_to_redo(new_rows, touched, changed)
    merged = merge_standardized(previous, standardize(redo, DAY, CONFIG), touched, redo, changed)
    whole = standardize(new_rows, DAY, CONFIG)
    assert same(merged.readings, whole.readings, ["meter_id", "reading_ts"])
    assert merged.rejected.equals(whole.rejected)
    assert merged.revisions.equals(whole.revisions)
    assert same(merged.meter_stats, whole.meter_stats, ["meter_id"])

    old_scores = score_partition(previous.readings, DAY, CONFIG)
    chosen = pl.col("meter_id").is_in(touched.implode())
    kept = Scored(readings=old_scores.readings.filter(~chosen), meters=old_scores.meters.filter(~chosen),
                  estimates=old_scores.estimates.filter(~chosen))
    scores = merge_scored(kept, score_partition(whole.readings.filter(chosen), DAY, CONFIG))
    whole_scores = score_partition(whole.readings, DAY, CONFIG)
    assert scores.readings.equals(whole_scores.readings)
    assert same(scores.meters, whole_scores.meters, ["meter_id"])
    assert scores.estimates.equals(whole_scores.estimates)


def test_other_rules_or_no_previous_day_make_the_day_whole():
    _, files = day_rows({"a": ([("SM-1", 0, "1", "kW")], 0)})
    assert changed_keys(None, Basis.of(files, CONFIG)) is None
    other = RulesConfig(partitions_start=DAY, max_kw=50.0)
    assert changed_keys(Basis.of(files, other).frame("v1"), Basis.of(files, CONFIG)) is None
    assert changed_keys(Basis.of(files, CONFIG).frame("v1"), Basis.of(files, CONFIG)) == set()
