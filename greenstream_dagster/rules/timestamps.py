"""Timestamp rule (SPEC §2): `YYYY-MM-DD(T| )HH:MM:SS(.fraction)?(Z|±HH:MM)?`.

Uppercase T and Z, seconds required, a colon in the offset; the fraction is
truncated to whole seconds and no offset means UTC. Impossible dates or times
(Feb 30, hour 24) are invalid. Components are checked before a datetime is
built, because Polars refuses (for the whole column) to build an impossible one.
"""

from __future__ import annotations

import polars as pl

from greenstream_dagster.rules.schemas import UTC_TIMESTAMP

TIMESTAMP_PATTERN = (
    r"^(?<year>[0-9]{4})-(?<month>[0-9]{2})-(?<day>[0-9]{2})[T ]"
    r"(?<hour>[0-9]{2}):(?<minute>[0-9]{2}):(?<second>[0-9]{2})(?:\.[0-9]+)?"
    r"(?<offset>Z|(?<sign>[+-])(?<off_hour>[0-9]{2}):(?<off_minute>[0-9]{2}))?$"
)
_PARTS = ("year", "month", "day", "hour", "minute", "second", "off_hour", "off_minute")


def _days_in_month(year: pl.Expr, month: pl.Expr) -> pl.Expr:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )


def parse_timestamp(text: pl.Expr) -> pl.Expr:
    """Text → UTC Datetime, null when the text is not a valid timestamp."""
    groups = text.str.extract_groups(TIMESTAMP_PATTERN)
    part = {name: groups.struct.field(name).cast(pl.Int32) for name in _PARTS}
    year, month, day = part["year"], part["month"], part["day"]
    hour, minute, second = part["hour"], part["minute"], part["second"]
    off_hour = part["off_hour"].fill_null(0)
    off_minute = part["off_minute"].fill_null(0)
    valid = (
        groups.struct.field("year").is_not_null()
        & (year >= 1)
        & month.is_between(1, 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
        & hour.is_between(0, 23)
        & minute.is_between(0, 59)
        & second.is_between(0, 59)
        & off_hour.is_between(0, 23)
        & off_minute.is_between(0, 59)
    )

    def safe(value: pl.Expr, fallback: int) -> pl.Expr:
        return pl.when(valid).then(value).otherwise(fallback)

    local = pl.datetime(
        safe(year, 2000), safe(month, 1), safe(day, 1),
        safe(hour, 0), safe(minute, 0), safe(second, 0), time_unit="us",
    )
    sign = pl.when(groups.struct.field("sign") == "-").then(-1).otherwise(1)
    offset_minutes = sign * (off_hour * 60 + off_minute)
    utc = (local - pl.duration(minutes=safe(offset_minutes, 0))).dt.replace_time_zone("UTC")
    return pl.when(valid).then(utc).otherwise(None).cast(UTC_TIMESTAMP)


def format_timestamp_utc(ts: pl.Expr) -> pl.Expr:
    """The canonical text of a UTC timestamp used in record ids: `YYYY-MM-DDTHH:MM:SSZ`."""
    return ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
