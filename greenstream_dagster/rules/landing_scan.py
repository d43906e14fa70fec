"""Decide which partition days to run from listings of the landing zone (SPEC §6).

Rule: the sensor skips content it has already seen — the same ETag under the same
partition. A partition day's *content* is therefore the set of distinct ETags in
its date folder. When that set differs from the one recorded at the day's last
run (an object added, replaced by different bytes, or removed), the day gets one
run; otherwise it is skipped. Consequences, on purpose:

- re-uploading identical bytes, under the same key or a new one, in the same day
  starts no run; the same bytes in another day do (different partition);
- there is no "last key seen" high-water mark, so the order in which keys arrive
  cannot hide a file, and a late file in an older day of the look-back is found;
- all state is the cursor, so a restarted daemon takes the same decisions.

- a day whose objects were all removed is a change too: it gets a run, whose
  removal guard stops and names what is gone (SPEC §5), instead of being forgotten.

Cursor (JSON): ``{"v": 2, "days": {"YYYY-MM-DD": {"etags": <n>, "digest": <hex>, "seq": <k>}}}``
with one entry per day of the look-back window that had content, the digest being
SHA-256 (first 32 hex) of the sorted distinct ETags (an emptied day keeps an entry
with 0 ETags). `seq` counts the day's changes. The cursor's size is bounded by the
look-back (about 90 bytes a day), never by the number of objects: Dagster keeps
cursors in its storage and rewrites them every tick. Days that leave the window
are dropped. The run key is ``raw-<day>-<digest>-<seq>``: a tick replayed after a
crash asks for the same run again and Dagster deduplicates it, while content that
returns to an earlier state (a file removed, then uploaded again) is a new change
with a new key — Dagster keeps run keys forever, so a digest alone would never run again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from greenstream_dagster.rules.bounded_text import for_log
from greenstream_dagster.rules.landing_key import LandingObject, date_folder

CURSOR_VERSION = 2
DEFAULT_LOOKBACK_DAYS = 7


@dataclass(frozen=True)
class LookbackWindow:
    """Partition days the sensor watches: the last `lookback_days` up to the evaluation day,
    clipped at the partitions' start date. Empty when the start is after the evaluation day."""

    first: date
    last: date
    partitions_start: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(n) for n in range((self.last - self.first).days + 1)]

    def why_outside(self, day: date) -> str:
        if day > self.last:
            return f"after the evaluation day {self.last.isoformat()}"
        if day < self.partitions_start:
            return f"before the partitions' start date {self.partitions_start.isoformat()}"
        return f"older than the look-back window starting {self.first.isoformat()}"


def lookback_window(evaluation_day: date, lookback_days: int, partitions_start: date) -> LookbackWindow:
    """The window of SPEC §6 (default 7 days, the evaluation day included)."""
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    first = max(evaluation_day - timedelta(lookback_days - 1), partitions_start)
    return LookbackWindow(first=first, last=evaluation_day, partitions_start=partitions_start)


@dataclass(frozen=True)
class IgnoredItem:
    """A key (or a whole folder prefix) outside the landing pattern, with the reason."""

    key: str
    reason: str


@dataclass(frozen=True)
class PartitionRequest:
    """One run for one partition day whose content changed."""

    partition_key: str
    run_key: str
    objects: int
    etags: int
    total_bytes: int
    digest: str


@dataclass(frozen=True)
class ScanReport:
    """What the evaluation did not run, and why; logged by the sensor."""

    ignored: tuple[IgnoredItem, ...] = ()
    empty_objects: tuple[str, ...] = ()  # still routed: the run dead-letters them (SPEC §1)
    unchanged_days: tuple[date, ...] = ()  # content already seen
    emptied_days: tuple[date, ...] = ()  # folder now empty: a run (its removal guard decides)
    pruned_days: tuple[date, ...] = ()  # left the look-back window, dropped from the cursor
    cursor_problem: str | None = None  # previous cursor unreadable: started afresh


@dataclass(frozen=True)
class ScanPlan:
    requests: tuple[PartitionRequest, ...]
    cursor: str
    report: ScanReport = field(default_factory=ScanReport)

    def summary(self, examples: int = 3) -> str:
        """One bounded log line: counts and the first few examples of each kind."""
        return describe_plan(self, examples)


def content_digest(objects: Sequence[LandingObject]) -> tuple[str, int]:
    """Digest and count of the distinct ETags: the identity of a partition's content."""
    etags = sorted({o.etag.strip('"') for o in objects})
    digest = hashlib.sha256("\n".join(etags).encode()).hexdigest()[:32]
    return digest, len(etags)


@dataclass(frozen=True)
class DayState:
    """What the cursor remembers of a day: its content digest, ETag count and change count."""

    digest: str
    etags: int
    seq: int


def read_cursor(cursor: str | None) -> tuple[dict[date, DayState], str | None]:
    """State per day from the previous cursor, and a problem text if it could not be read.

    An unreadable cursor starts afresh rather than failing every tick: every day of
    the window is then requested again (with the first change number, so Dagster drops
    the run keys it already has).
    """
    if not cursor:
        return {}, None
    try:
        data = json.loads(cursor)
        if data.get("v") not in (1, CURSOR_VERSION):
            return {}, f"cursor version {data.get('v')!r} is not {CURSOR_VERSION}"
        return {
            date.fromisoformat(day): DayState(entry["digest"], int(entry["etags"]), int(entry.get("seq", 0)))
            for day, entry in data["days"].items()
        }, None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return {}, f"cursor is not readable ({type(error).__name__}: {error})"


def write_cursor(entries: Mapping[date, DayState]) -> str:
    days = {
        day.isoformat(): {"etags": state.etags, "digest": state.digest, "seq": state.seq}
        for day, state in sorted(entries.items())
    }
    return json.dumps({"v": CURSOR_VERSION, "days": days}, sort_keys=True, separators=(",", ":"))


def plan_scan(
    previous_cursor: str | None,
    listings: Mapping[date, Sequence[LandingObject]],
    ignored: Sequence[IgnoredItem],
    window: LookbackWindow,
) -> ScanPlan:
    """Plan one evaluation: at most one run per partition day whose content changed.

    `listings` holds the objects (already matching the landing pattern) of each date
    folder listed; days outside `window` are ignored and reported, not run.
    """
    seen, cursor_problem = read_cursor(previous_cursor)
    ignored_items = list(ignored)
    requests: list[PartitionRequest] = []
    entries: dict[date, DayState] = {}
    empty: list[str] = []
    unchanged: list[date] = []
    emptied: list[date] = []

    for day in sorted(set(listings) | {d for d in seen if d in window}):
        objects = listings.get(day, ())
        if day not in window:
            if objects:
                reason = f"{window.why_outside(day)} ({len(objects)} object(s))"
                ignored_items.append(IgnoredItem(date_folder(day), reason))
            continue
        previous = seen.get(day)
        if not objects and previous is None:
            continue
        digest, n_etags = content_digest(objects)
        if previous is not None and previous.digest == digest:
            entries[day] = previous
            if objects:
                unchanged.append(day)
            continue
        state = DayState(digest, n_etags, previous.seq + 1 if previous is not None else 0)
        entries[day] = state
        empty.extend(sorted(o.key for o in objects if o.size == 0))
        if not objects:
            emptied.append(day)
        requests.append(
            PartitionRequest(
                partition_key=day.isoformat(),
                run_key=f"raw-{day.isoformat()}-{digest}-{state.seq}",
                objects=len(objects),
                etags=n_etags,
                total_bytes=sum(o.size for o in objects),
                digest=digest,
            )
        )

    report = ScanReport(
        ignored=tuple(ignored_items),
        empty_objects=tuple(empty),
        unchanged_days=tuple(unchanged),
        emptied_days=tuple(emptied),
        pruned_days=tuple(sorted(d for d in seen if d not in window)),
        cursor_problem=cursor_problem,
    )
    return ScanPlan(requests=tuple(requests), cursor=write_cursor(entries), report=report)


# A day's next run waits this many times its last run's length (from that run's creation), so
# runs of a filling day take at most about a sixth of the time, whatever the fleet's size
# (three: 16 runs and 4.2 × a full day's compute over ten minutes of arrival at full scale;
# six: 13 runs and 3.6 ×, the slowest file in PostgreSQL after 91 s instead of 76 s).
RUN_SPACING_FACTOR = 6
# ... and at least this many times the longest recent ingest run of any day (what a full day of
# this fleet costs). A filling day's first runs are short because the day is still small, not
# because the fleet is: spaced by their own length, a large fleet's day ran every sensor tick
# for its first minutes, a fifth of its compute. A small fleet's full day is short, so it is
# hardly held longer.
FLEET_RUN_FACTOR = 2


def spacing_left(now: float, created: float, started: float | None, ended: float | None, cap: float,
                 fleet_run: float = 0.0) -> float:
    """Seconds a day waits before its next run, given its last run (epoch seconds): until six
    times that run's length, or twice `fleet_run` (the longest recent ingest run of any day) if
    longer, has passed since it was created; at most `cap` after its creation.

    A small fleet's day runs in seconds and gets its next run within seconds; a large one's,
    whose full-day runs take tens of seconds, waits up to the cap from its first run on. A run
    still going counts as long as it has lasted so far; one whose times are not known counts as
    long as the cap.
    """
    if started is None:
        length = cap if ended is not None else now - created  # never started: known only if it ended
    else:
        length = (ended if ended is not None else now) - started
    wait = max(RUN_SPACING_FACTOR * length, FLEET_RUN_FACTOR * fleet_run)
    return max(0.0, min(cap, wait) - (now - created))


def hold_days(plan_cursor: str, previous_cursor: str | None, days: set[date]) -> str:
    """The plan's cursor with `days` as the previous cursor had them: their change stays unseen,
    so a later evaluation finds it again and requests their run then."""
    planned, _ = read_cursor(plan_cursor)
    before, _ = read_cursor(previous_cursor)
    for day in days:
        planned.pop(day, None)
        if day in before:
            planned[day] = before[day]
    return write_cursor(planned)


def _examples(items: Sequence[str], examples: int) -> str:
    # Keys come from whoever uploads: escaped and bounded, so none can forge or flood a log line.
    shown = ", ".join(for_log(item, 300) for item in items[:examples])
    return shown + (f", … {len(items) - examples} more" if len(items) > examples else "")


def describe_plan(plan: ScanPlan, examples: int = 3) -> str:
    """Counts plus a few examples, so a bucket full of stray keys cannot flood the log."""
    report = plan.report
    runs = [f"{r.partition_key} ({r.objects} objects)" for r in plan.requests]
    parts = [f"{len(runs)} run(s)" + (f": {_examples(runs, examples)}" if runs else "")]
    sections = (
        ("day(s) already seen", [d.isoformat() for d in report.unchanged_days]),
        ("ignored key(s)", [f"{i.key} ({i.reason})" for i in report.ignored]),
        ("empty object(s), routed to dead letter by the run", list(report.empty_objects)),
        ("day(s) emptied, run to check the removal", [d.isoformat() for d in report.emptied_days]),
        ("day(s) left the look-back, dropped from the cursor", [d.isoformat() for d in report.pruned_days]),
    )
    parts += [f"{len(items)} {label}: {_examples(items, examples)}" for label, items in sections if items]
    if report.cursor_problem:
        parts.append(f"previous cursor ignored: {report.cursor_problem}")
    return "; ".join(parts)
