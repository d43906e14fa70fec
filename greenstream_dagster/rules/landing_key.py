"""Landing-zone keys (SPEC §1): `raw-data/YYYY-MM-DD/<any depth>/<name>.csv[.gz]`.

The date folder names the partition day. Keys outside the pattern are ignored
and reported, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

LANDING_PREFIX = "raw-data/"
_KEY = re.compile(r"^raw-data/(\d{4}-\d{2}-\d{2})/(?:.+/)?[^/]+\.(csv|csv\.gz)$")


@dataclass(frozen=True)
class LandingObject:
    """One object of the landing zone as listed from S3."""

    key: str
    size: int
    etag: str
    last_modified: datetime  # timezone-aware UTC; it orders deliveries (SPEC §2)


@dataclass(frozen=True)
class LandingKey:
    """A key that matched the landing pattern: its partition day and compression."""

    partition_date: date
    gzip: bool


class IgnoredKey(ValueError):
    """A key outside the landing pattern; the message says why."""


def parse_landing_key(key: str) -> LandingKey:
    """Route a key to its partition day, or raise IgnoredKey with the reason."""
    match = _KEY.match(key)
    if match is None:
        if not key.startswith(LANDING_PREFIX):
            raise IgnoredKey(f"{key}: not under {LANDING_PREFIX}")
        if not (key.endswith(".csv") or key.endswith(".csv.gz")):
            raise IgnoredKey(f"{key}: extension is not .csv or .csv.gz")
        raise IgnoredKey(f"{key}: expected {LANDING_PREFIX}YYYY-MM-DD/…/<name>.csv[.gz]")
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        raise IgnoredKey(f"{key}: {match.group(1)} is not a calendar date") from None
    return LandingKey(partition_date=day, gzip=match.group(2) == "csv.gz")


def date_folder(day: date) -> str:
    """The prefix holding one partition day's files."""
    return f"{LANDING_PREFIX}{day.isoformat()}/"
