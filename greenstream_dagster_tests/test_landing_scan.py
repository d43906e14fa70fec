"""The sensor's decisions (SPEC §6), without S3 or Dagster."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_scan import (
    IgnoredItem,
    lookback_window,
    plan_scan,
    spacing_left,
)

TODAY = date(2024, 4, 15)
START = date(2024, 1, 1)
WINDOW = lookback_window(TODAY, 7, START)


def obj(day: date, name: str, etag: str, size: int = 10) -> LandingObject:
    return LandingObject(
        key=f"raw-data/{day.isoformat()}/{name}",
        size=size,
        etag=f'"{etag}"',
        last_modified=datetime(2024, 4, 15, tzinfo=timezone.utc),
    )


def day(n: int) -> date:
    """The partition day n days before the evaluation day."""
    return TODAY - timedelta(n)


def keys(plan) -> list[str]:
    return [r.partition_key for r in plan.requests]


def test_window_is_the_last_seven_days_including_today():
    assert (WINDOW.first, WINDOW.last) == (date(2024, 4, 9), TODAY)
    assert len(WINDOW.days) == 7


def test_window_is_clipped_at_the_partitions_start():
    window = lookback_window(date(2024, 1, 3), 7, START)
    assert window.days == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]


def test_new_files_give_one_request_per_partition_day():
    listings = {
        day(0): [obj(day(0), "a.csv", "e1"), obj(day(0), "b.csv", "e2")],
        day(2): [obj(day(2), "c.csv", "e3")],
    }
    plan = plan_scan(None, listings, [], WINDOW)
    assert keys(plan) == [day(2).isoformat(), day(0).isoformat()]
    request = plan.requests[1]
    assert request.objects == 2 and request.etags == 2 and request.total_bytes == 20
    assert request.run_key == f"raw-{day(0).isoformat()}-{request.digest}-0"


def test_same_listing_again_gives_no_request():
    listings = {day(0): [obj(day(0), "a.csv", "e1")]}
    first = plan_scan(None, listings, [], WINDOW)
    again = plan_scan(first.cursor, listings, [], WINDOW)
    assert again.requests == ()
    assert again.report.unchanged_days == (day(0),)
    assert again.cursor == first.cursor


def test_changed_etag_gives_a_new_run_key():
    first = plan_scan(None, {day(0): [obj(day(0), "a.csv", "e1")]}, [], WINDOW)
    changed = plan_scan(first.cursor, {day(0): [obj(day(0), "a.csv", "e1-new")]}, [], WINDOW)
    assert keys(changed) == [day(0).isoformat()]
    assert changed.requests[0].run_key != first.requests[0].run_key


def test_same_etag_under_another_key_of_the_same_partition_is_skipped():
    first = plan_scan(None, {day(0): [obj(day(0), "a.csv", "e1")]}, [], WINDOW)
    copy = {day(0): [obj(day(0), "a.csv", "e1"), obj(day(0), "sub/copy-of-a.csv", "e1")]}
    assert plan_scan(first.cursor, copy, [], WINDOW).requests == ()


def test_same_etag_under_another_partition_is_new_content():
    first = plan_scan(None, {day(0): [obj(day(0), "a.csv", "e1")]}, [], WINDOW)
    moved = {day(0): [obj(day(0), "a.csv", "e1")], day(1): [obj(day(1), "a.csv", "e1")]}
    assert keys(plan_scan(first.cursor, moved, [], WINDOW)) == [day(1).isoformat()]


def test_late_file_in_an_older_day_within_the_lookback_requests_only_that_day():
    listings = {d: [obj(d, "a.csv", f"e-{d}")] for d in (day(0), day(1), day(6))}
    first = plan_scan(None, listings, [], WINDOW)
    listings[day(6)] = [*listings[day(6)], obj(day(6), "late.csv", "e-late")]
    late = plan_scan(first.cursor, listings, [], WINDOW)
    assert keys(late) == [day(6).isoformat()]


def test_keys_arriving_out_of_lexicographic_order_are_not_missed():
    # "z.csv" lands first, "a.csv" after it: no high-water mark can skip "a.csv".
    first = plan_scan(None, {day(0): [obj(day(0), "z.csv", "e-z")]}, [], WINDOW)
    both = {day(0): [obj(day(0), "a.csv", "e-a"), obj(day(0), "z.csv", "e-z")]}
    later = plan_scan(first.cursor, both, [], WINDOW)
    assert keys(later) == [day(0).isoformat()]


def test_listing_order_does_not_change_the_decision():
    a, b = obj(day(0), "a.csv", "e-a"), obj(day(0), "b.csv", "e-b")
    assert plan_scan(None, {day(0): [a, b]}, [], WINDOW) == plan_scan(None, {day(0): [b, a]}, [], WINDOW)


def test_day_leaving_the_lookback_is_pruned_from_the_cursor():
    first = plan_scan(None, {day(6): [obj(day(6), "a.csv", "e1")]}, [], WINDOW)
    tomorrow = lookback_window(TODAY + timedelta(1), 7, START)
    plan = plan_scan(first.cursor, {day(6): [obj(day(6), "a.csv", "e1")]}, [], tomorrow)
    assert plan.requests == ()
    assert plan.report.pruned_days == (day(6),)
    assert json.loads(plan.cursor)["days"] == {}
    assert [i.key for i in plan.report.ignored] == [f"raw-data/{day(6).isoformat()}/"]
    assert "older than the look-back" in plan.report.ignored[0].reason


@pytest.mark.parametrize(
    ("folder_day", "reason"),
    [
        (TODAY + timedelta(1), "after the evaluation day"),
        (date(2023, 12, 31), "before the partitions' start date"),
    ],
)
def test_days_after_today_or_before_the_start_are_ignored_and_reported(folder_day, reason):
    window = lookback_window(date(2024, 1, 3), 7, START) if folder_day < START else WINDOW
    plan = plan_scan(None, {folder_day: [obj(folder_day, "a.csv", "e1")]}, [], window)
    assert plan.requests == ()
    assert reason in plan.report.ignored[0].reason
    assert json.loads(plan.cursor)["days"] == {}


def test_ignored_keys_are_reported_and_never_run():
    ignored = [IgnoredItem("raw-data/2024-04-15/notes.txt", "extension is not .csv or .csv.gz")]
    plan = plan_scan(None, {}, ignored, WINDOW)
    assert plan.requests == () and plan.report.ignored == tuple(ignored)
    assert "notes.txt" in plan.summary()


def test_empty_objects_are_routed_and_reported():
    # An empty object is a file of the partition: the run dead-letters it (SPEC §1).
    empty = obj(day(0), "empty.csv", "d41d8cd98f00b204e9800998ecf8427e", size=0)
    plan = plan_scan(None, {day(0): [empty]}, [], WINDOW)
    assert keys(plan) == [day(0).isoformat()]
    assert plan.report.empty_objects == (f"raw-data/{day(0).isoformat()}/empty.csv",)


def test_emptied_day_gets_one_run_so_its_removal_guard_can_speak():
    first = plan_scan(None, {day(0): [obj(day(0), "a.csv", "e1")]}, [], WINDOW)
    plan = plan_scan(first.cursor, {}, [], WINDOW)
    assert keys(plan) == [day(0).isoformat()] and plan.report.emptied_days == (day(0),)
    assert plan.requests[0].objects == 0
    # Once noticed, an emptied day is quiet until something lands again.
    assert plan_scan(plan.cursor, {}, [], WINDOW).requests == ()


def test_content_returning_to_an_earlier_state_runs_again_under_a_new_key():
    a, b = obj(day(0), "a.csv", "e1"), obj(day(0), "b.csv", "e2")
    first = plan_scan(None, {day(0): [a]}, [], WINDOW)
    added = plan_scan(first.cursor, {day(0): [a, b]}, [], WINDOW)
    removed = plan_scan(added.cursor, {day(0): [a]}, [], WINDOW)
    emptied = plan_scan(removed.cursor, {}, [], WINDOW)
    back = plan_scan(emptied.cursor, {day(0): [a]}, [], WINDOW)
    run_keys = [plan.requests[0].run_key for plan in (first, added, removed, emptied, back)]
    # Same content as the first tick (twice), yet every change is a run of its own:
    # Dagster never launches a run key it has seen.
    assert removed.requests[0].digest == first.requests[0].digest == back.requests[0].digest
    assert len(set(run_keys)) == 5


def test_restart_rebuilds_identical_decisions_from_the_cursor_string():
    listings = {d: [obj(d, f"{i}.csv", f"e{i}-{d}") for i in range(3)] for d in WINDOW.days}
    cursor = plan_scan(None, listings, [], WINDOW).cursor
    listings[day(3)] = [*listings[day(3)], obj(day(3), "late.csv", "late")]
    # A fresh process only has the stored string.
    assert plan_scan(str(cursor), listings, [], WINDOW) == plan_scan(cursor, listings, [], WINDOW)
    assert keys(plan_scan(str(cursor), listings, [], WINDOW)) == [day(3).isoformat()]


def test_unreadable_cursor_starts_afresh_and_says_so():
    plan = plan_scan("not json", {day(0): [obj(day(0), "a.csv", "e1")]}, [], WINDOW)
    assert keys(plan) == [day(0).isoformat()]
    assert "cursor is not readable" in plan.report.cursor_problem


def test_cursor_size_is_bounded_by_the_lookback_not_the_objects():
    large = plan_scan(
        None, {d: [obj(d, f"{i}.csv", f"{i:032x}") for i in range(50_000)] for d in WINDOW.days}, [], WINDOW
    )
    # 7 days x 50,000 ETags: under 100 bytes a day, where the ETags alone weigh 12 MB.
    assert len(large.cursor) < 100 * len(WINDOW.days)


def test_summary_is_bounded_however_many_keys_are_ignored():
    ignored = [IgnoredItem(f"raw-data/junk-{i}.txt", "not a date folder") for i in range(10_000)]
    summary = plan_scan(None, {}, ignored, WINDOW).summary()
    assert "10000 ignored" in summary and len(summary) < 500


def test_a_day_waits_six_times_its_last_run_at_most_the_cap():
    """Created at t=100, started at 102: a 5 s run holds the day until t=130, a 40 s run until
    the cap (60 s after creation); a run still going holds it while it lasts, up to the cap."""
    assert spacing_left(now=110, created=100, started=102, ended=107, cap=60) == 20  # 6 × 5 s = 30 s
    assert spacing_left(now=131, created=100, started=102, ended=107, cap=60) == 0
    assert spacing_left(now=150, created=100, started=102, ended=142, cap=60) == 10  # 6 × 40 s, capped
    assert spacing_left(now=130, created=100, started=102, ended=None, cap=60) == 30  # going for 28 s
    assert spacing_left(now=170, created=100, started=102, ended=None, cap=60) == 0  # the next one queues
    assert spacing_left(now=110, created=100, started=None, ended=105, cap=60) == 50  # times unknown: the cap


def test_a_day_of_a_fleet_whose_full_day_takes_long_waits_twice_that_from_its_first_run():
    """A filling day's first run is short (the day is still small); the fleet's longest recent
    ingest run tells what its full day costs: 2 × 25 s holds the day 50 s, not 6 × 3 s."""
    assert spacing_left(now=110, created=100, started=102, ended=105, cap=60, fleet_run=25) == 40
    assert spacing_left(now=110, created=100, started=102, ended=105, cap=60, fleet_run=2) == 8  # 6 × 3 s
    assert spacing_left(now=110, created=100, started=102, ended=105, cap=60, fleet_run=45) == 50  # the cap
