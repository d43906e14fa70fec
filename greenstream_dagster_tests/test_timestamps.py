"""SPEC §2 timestamp forms: `YYYY-MM-DD(T| )HH:MM:SS(.fraction)?(Z|±HH:MM)?`, stored as UTC."""

from datetime import datetime, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.timestamps import timestamp_text, with_parsed_timestamp


def parse(text):
    return with_parsed_timestamp(pl.LazyFrame({"t": [text]}, schema={"t": pl.Utf8}), "t", "ts").collect()["ts"].item()


def utc(*parts):
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-04-15T18:45:00Z", utc(2024, 4, 15, 18, 45)),
        ("2024-04-15 18:45:00", utc(2024, 4, 15, 18, 45)),
        ("2024-04-15T18:45:00", utc(2024, 4, 15, 18, 45)),
        ("2024-04-15T18:45:59.999999Z", utc(2024, 4, 15, 18, 45, 59)),
        ("2024-04-15T18:45:00.5+02:00", utc(2024, 4, 15, 16, 45)),
        ("2024-04-15T18:45:00-05:30", utc(2024, 4, 16, 0, 15)),
        ("2024-02-29T00:00:00Z", utc(2024, 2, 29)),
        ("2000-02-29T00:00:00Z", utc(2000, 2, 29)),
    ],
)
def test_valid_forms(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-04-15t18:45:00Z",  # lowercase t
        "2024-04-15T18:45:00z",  # lowercase z
        "2024-04-15T18:45Z",  # no seconds
        "2024-04-15T18:45:00+0200",  # no colon in offset
        "2024-04-15T18:45:00.Z",  # empty fraction
        "2024/04/15 18:45:00",
        "2024-4-15T18:45:00Z",
        "2023-02-29T00:00:00Z",  # not a leap year
        "1900-02-29T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-04-15T24:00:00Z",
        "2024-04-15T23:60:00Z",
        "2024-04-15T23:59:60Z",
        "2024-04-15T18:45:00+24:00",
        " 2024-04-15T18:45:00Z x",
        "1713206700",
        "２０２４-04-15T18:45:00Z",  # non-ASCII digits
    ],
)
def test_invalid_forms(text):
    assert parse(text) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.datetimes(min_value=datetime(1965, 1, 1), max_value=datetime(1975, 12, 31),
                             timezones=st.just(timezone.utc)), min_size=1, max_size=40))
def test_the_record_id_text_of_a_timestamp_is_its_utc_second(instants):
    """timestamp_text (looked up by integer arithmetic) is what strftime gives: whole seconds,
    fractions truncated, before 1970 and across days."""
    frame = pl.DataFrame({"ts": instants}, schema={"ts": pl.Datetime("us", "UTC")})
    assert timestamp_text(frame, "ts").to_list() == [i.strftime("%Y-%m-%dT%H:%M:%SZ") for i in instants]
