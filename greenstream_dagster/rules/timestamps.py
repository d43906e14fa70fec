"""Timestamp rule (SPEC §2): `YYYY-MM-DD(T| )HH:MM:SS(.fraction)?(Z|±HH:MM)?`.

Uppercase T and Z, seconds required, a colon in the offset; the fraction is
truncated to whole seconds and no offset means UTC. Impossible dates or times
(Feb 30, hour 24) are invalid. Components are checked before a datetime is
built, because Polars refuses (for the whole column) to build an impossible one.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from greenstream_dagster.rules.schemas import UTC_TIMESTAMP

TIMESTAMP_PATTERN = (
    r"^(?<_t_year>[0-9]{4})-(?<_t_month>[0-9]{2})-(?<_t_day>[0-9]{2})[T ]"
    r"(?<_t_hour>[0-9]{2}):(?<_t_minute>[0-9]{2}):(?<_t_second>[0-9]{2})(?:\.[0-9]+)?"
    r"(?<_t_offset>Z|(?<_t_sign>[+-])(?<_t_off_hour>[0-9]{2}):(?<_t_off_minute>[0-9]{2}))?$"
)
_PARTS = ("year", "month", "day", "hour", "minute", "second", "off_hour", "off_minute")
_GROUPS = ("_t_offset", "_t_sign", *(f"_t_{p}" for p in _PARTS))


def _days_in_month(year: pl.Expr, month: pl.Expr) -> pl.Expr:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )


def with_parsed_timestamp(frame: pl.LazyFrame, text: str, target: str) -> pl.LazyFrame:
    """Add `target`: the UTC Datetime of column `text`, null when it is not a valid timestamp.

    Built in stages of columns, not one expression: the regex runs once per
    row instead of once per use of each captured part.
    """
    part = {name: pl.col(f"_t_{name}") for name in _PARTS}
    year, month, day = part["year"], part["month"], part["day"]
    valid = (
        pl.col("_t_year").is_not_null()
        & (year >= 1)
        & month.is_between(1, 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
        & part["hour"].is_between(0, 23)
        & part["minute"].is_between(0, 59)
        & part["second"].is_between(0, 59)
        & part["off_hour"].is_between(0, 23)
        & part["off_minute"].is_between(0, 59)
    )

    def safe(name: str, fallback: int) -> pl.Expr:
        return pl.when(pl.col("_t_valid")).then(part[name]).otherwise(fallback)

    sign = pl.when(pl.col("_t_sign") == "-").then(-1).otherwise(1)
    local = pl.datetime(
        safe("year", 2000), safe("month", 1), safe("day", 1),
        safe("hour", 0), safe("minute", 0), safe("second", 0), time_unit="us",
    )
    offset = pl.when(pl.col("_t_valid")).then(sign * (part["off_hour"] * 60 + part["off_minute"])).otherwise(0)
    utc = (local - pl.duration(minutes=offset)).dt.replace_time_zone("UTC")
    return (
        frame.with_columns(pl.col(text).str.extract_groups(TIMESTAMP_PATTERN).alias("_t"))
        .unnest("_t")
        .with_columns(
            *[pl.col(f"_t_{name}").cast(pl.Int32) for name in _PARTS[:6]],
            *[pl.col(f"_t_{name}").cast(pl.Int32).fill_null(0) for name in _PARTS[6:]],
        )
        .with_columns(valid.alias("_t_valid"))
        .with_columns(pl.when(pl.col("_t_valid")).then(utc).otherwise(None).cast(UTC_TIMESTAMP).alias(target))
        .drop(*_GROUPS, "_t_valid")
    )


_TIMES_OF_DAY: pl.Series | None = None
_MAX_TABLE_DAYS = 10_000


def _times_of_day() -> pl.Series:
    global _TIMES_OF_DAY
    if _TIMES_OF_DAY is None:
        _TIMES_OF_DAY = pl.Series(
            [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        )
    return _TIMES_OF_DAY


def timestamp_text(frame: pl.DataFrame, ts: str) -> pl.Series:
    """`YYYY-MM-DDTHH:MM:SSZ` of a UTC timestamp column, the canonical text of record ids.

    Looked up from tables of the frame's days and of the 86,400 seconds of a day:
    per-row strftime costs seconds on a 4.8-million-row partition.
    """
    column = frame[ts]
    # Whole seconds since the epoch, split by integer arithmetic (the .dt fields of a zoned
    # column convert every row); floor division keeps instants before 1970 on their day.
    seconds = column.dt.epoch("s")
    first_second, last_second = seconds.min(), seconds.max()
    # Int64 bounds: ints, or None when the column has no non-null value.
    if not isinstance(first_second, int) or not isinstance(last_second, int) or (last_second - first_second) // 86_400 >= _MAX_TABLE_DAYS:
        return column.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    first_day = first_second // 86_400
    epoch = date(1970, 1, 1).toordinal()
    day_texts = pl.Series([date.fromordinal(epoch + d).isoformat() for d in range(first_day, last_second // 86_400 + 1)])
    text = pl.DataFrame({"s": seconds}).select(
        pl.concat_str([pl.lit(day_texts).gather(pl.col("s") // 86_400 - first_day), pl.lit("T"),
                       pl.lit(_times_of_day()).gather(pl.col("s") % 86_400), pl.lit("Z")])
    ).to_series()
    return text.alias(ts)
