"""Text forms of a slot's timestamp, all valid under SPEC §2.

Each readings file uses one style, as one vendor's export would. The offset
styles put some rows' local date on the day before or after while their UTC
date is the partition day, which is the date that counts.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from greenstream_dagster.generator.load_profile import SLOTS_PER_DAY

# style -> (strftime of the local wall time, offset from UTC in hours, suffix)
STYLES: dict[str, tuple[str, int, str]] = {
    "zulu": ("%Y-%m-%dT%H:%M:%S", 0, "Z"),
    "space": ("%Y-%m-%d %H:%M:%S", 0, ""),
    "utc_offset": ("%Y-%m-%dT%H:%M:%S", 0, "+00:00"),
    "fraction": ("%Y-%m-%dT%H:%M:%S", 0, "Z"),  # plus .mmm, truncated to the second
    "plus_two": ("%Y-%m-%dT%H:%M:%S", 2, "+02:00"),
    "minus_five": ("%Y-%m-%dT%H:%M:%S", -5, "-05:00"),
}
STYLE_WEIGHTS = {"zulu": 0.6, "space": 0.1, "utc_offset": 0.1, "fraction": 0.1,
                 "plus_two": 0.05, "minus_five": 0.05}


def slot_start(day: date, slot: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(minutes=15 * slot)


def canonical(instant: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`, the form of `timestamp_utc` in record ids (SPEC §2)."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_instant(instant: datetime, style: str) -> str:
    pattern, offset_h, suffix = STYLES[style]
    local = instant.astimezone(timezone(timedelta(hours=offset_h)))
    if style == "fraction":
        return local.strftime(pattern) + ".000" + suffix
    return local.strftime(pattern) + suffix


def day_texts(day: date, style: str) -> list[str]:
    """The 96 slot timestamps of a day in one style (fraction without its digits)."""
    pattern, offset_h, suffix = STYLES[style]
    zone = timezone(timedelta(hours=offset_h))
    return [slot_start(day, s).astimezone(zone).strftime(pattern) + suffix
            for s in range(SLOTS_PER_DAY)]


def timestamp_column(day: date, style: str, slots: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """One timestamp per row; the fraction style adds random milliseconds."""
    if style != "fraction":
        return pl.Series("timestamp", day_texts(day, style)).gather(slots)
    pattern, _, suffix = STYLES[style]
    seconds = pl.Series([slot_start(day, s).strftime(pattern) for s in range(SLOTS_PER_DAY)]).gather(slots)
    millis = pl.Series(rng.integers(0, 1000, len(slots))).cast(pl.Utf8).str.zfill(3)
    return (seconds + "." + millis + suffix).alias("timestamp")
