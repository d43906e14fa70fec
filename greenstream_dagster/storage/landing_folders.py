"""List the landing zone's date folders inside the sensor's look-back window (SPEC §1, §6).

Cost is bounded by the look-back, not by the bucket's history: one delimited
listing of `raw-data/` that starts after the day before the window (S3
`StartAfter`, `Delimiter='/'`), so older date folders are never enumerated, then
one paginated listing per date folder of the window, run concurrently.

What the delimited listing shows that cannot be routed is reported, not guessed
at: keys lying directly under `raw-data/`, folders whose names are not dates
(reported as one item per folder: listing their contents would make the cost
unbounded again), date folders after the evaluation day, and keys inside a date
folder that fail the landing-key rule. Stray keys that sort before the window's
first folder are, by design, not seen.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

from greenstream_dagster.rules.landing_key import (
    LANDING_PREFIX,
    IgnoredKey,
    LandingObject,
    date_folder,
    parse_landing_key,
)
from greenstream_dagster.rules.landing_scan import IgnoredItem, LookbackWindow
from greenstream_dagster.storage.landing import list_date_folder

_DATE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_MAX_WORKERS = 8


@dataclass(frozen=True)
class LandingWindowListing:
    """Routable objects per date folder of the window, and everything ignored on the way."""

    days: dict[date, list[LandingObject]] = field(default_factory=dict)
    ignored: list[IgnoredItem] = field(default_factory=list)


def list_landing_window(
    client, bucket: str, window: LookbackWindow, max_workers: int = DEFAULT_MAX_WORKERS
) -> LandingWindowListing:
    """List every date folder of `window` with its objects; report what is outside the pattern."""
    folder_days, ignored = _top_level(client, bucket, window)
    in_window = [day for day in folder_days if day in window]
    outside = [day for day in folder_days if day not in window]
    ignored += [IgnoredItem(date_folder(day), window.why_outside(day)) for day in outside]
    days: dict[date, list[LandingObject]] = {}
    if in_window:
        with ThreadPoolExecutor(max_workers=min(max_workers, len(in_window))) as pool:
            listed = pool.map(lambda day: list_date_folder(client, bucket, day), in_window)
            for day, objects in zip(in_window, listed):
                days[day] = _routable(objects, ignored)
    return LandingWindowListing(days=days, ignored=ignored)


def _top_level(client, bucket: str, window: LookbackWindow) -> tuple[list[date], list[IgnoredItem]]:
    """Date folders from the window's first day on, and the stray keys and folders beside them."""
    # '~' sorts after '/', so this skips the whole folder of the day before the window
    # (the folder name itself as StartAfter would drop that folder on SeaweedFS).
    start_after = f"{LANDING_PREFIX}{(window.first - timedelta(1)).isoformat()}~"
    days: list[date] = []
    ignored: list[IgnoredItem] = []
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=LANDING_PREFIX, Delimiter="/", StartAfter=start_after
    )
    for page in pages:
        for prefix in (p["Prefix"] for p in page.get("CommonPrefixes", [])):
            day, problem = _folder_day(prefix)
            if day is None:
                ignored.append(IgnoredItem(prefix, problem))
            else:
                days.append(day)
        for item in page.get("Contents", []):
            ignored.append(_ignored_key(item["Key"]))
    return days, ignored


def _folder_day(prefix: str) -> tuple[date | None, str]:
    name = prefix[len(LANDING_PREFIX) : -1]
    if not _DATE_NAME.match(name):
        return None, f"folder name {name!r} is not a date YYYY-MM-DD; its keys are ignored"
    try:
        return date.fromisoformat(name), ""
    except ValueError:
        return None, f"folder name {name!r} is not a calendar date; its keys are ignored"


def _ignored_key(key: str) -> IgnoredItem:
    try:
        parse_landing_key(key)
    except IgnoredKey as error:
        return IgnoredItem(key, str(error).removeprefix(f"{key}: "))
    return IgnoredItem(key, "outside a date folder")  # unreachable for keys directly under raw-data/


def _routable(objects: list[LandingObject], ignored: list[IgnoredItem]) -> list[LandingObject]:
    """Objects whose key passes the landing-key rule; the others go to `ignored`."""
    routable = []
    for obj in objects:
        try:
            parse_landing_key(obj.key)
        except IgnoredKey as error:
            ignored.append(IgnoredItem(obj.key, str(error).removeprefix(f"{obj.key}: ")))
        else:
            routable.append(obj)
    return routable
