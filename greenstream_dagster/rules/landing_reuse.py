"""Which landing objects of a day must be read again (work proportional to what arrived).

A day is re-processed when something in its folder changed, usually one new
file among dozens. An object whose key, ETag, size and last-modified time are
those of the previous read, read under the same limits, has the same bytes,
the same delivery order (SPEC §2 orders deliveries by last-modified time) and
so the same rows: they are taken from the previous read instead of being
fetched and parsed again. Dead-lettered objects are always read again (an
operator may have raised a limit to let one in), as is everything when the
limits changed or the previous read kept no rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.reading_limits import ReadingLimits


@dataclass(frozen=True)
class LandingReuse:
    to_read: list[LandingObject]  # new, changed or dead-lettered before: fetch and parse
    reused: list[LandingObject]  # read before as they are: their rows are in the previous rows


# Bump when rules/csv_file.py would read the same bytes into other rows: reads of older
# versions are then not reused.
READER_VERSION = 1


def limits_fingerprint(limits: ReadingLimits) -> str:
    """What the rows of a read depend on besides the bytes: the reader and its limits."""
    return f"reader {READER_VERSION}; {limits!r}"


def plan_reuse(objects: list[LandingObject], previous_files: pl.DataFrame | None,
               previous_rows_kept: bool, limits: ReadingLimits) -> LandingReuse:
    """Split today's listing by what the previous read of the day (its `files` frame) saw."""
    if (previous_files is None or not previous_rows_kept or "read_with" not in previous_files.columns):
        return LandingReuse(to_read=list(objects), reused=[])
    same_limits = previous_files.filter(
        pl.col("dead_letter_reason").is_null() & (pl.col("read_with") == limits_fingerprint(limits)))
    before = set(same_limits.select("key", "etag", "size", "last_modified").iter_rows())
    reused = [o for o in objects if o.etag and (o.key, o.etag, o.size, o.last_modified) in before]
    taken = {o.key for o in reused}
    return LandingReuse(to_read=[o for o in objects if o.key not in taken], reused=reused)


def reused_rows(previous_rows: pl.DataFrame, reused: list[LandingObject]) -> pl.DataFrame:
    """The previous read's rows of the reused objects."""
    keys = pl.Series([obj.key for obj in reused], dtype=pl.Utf8)
    return previous_rows.filter(pl.col("source_key").is_in(keys.implode()))
