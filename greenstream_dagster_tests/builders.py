"""Small builders for inline test data: CSV text in, the rules' frames out."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.csv_file import read_landing_file
from greenstream_dagster.rules.standardize import standardize

DAY = date(2024, 4, 15)
ARRIVAL = datetime(2024, 4, 15, 23, 0, tzinfo=timezone.utc)
HEADER = "meter_id,timestamp,value,unit\n"


def rows(text: str, key: str = "raw-data/2024-04-15/a.csv", modified: datetime = ARRIVAL, gzipped=False):
    data = text.encode() if isinstance(text, str) else text
    return read_landing_file(data, key, modified, gzipped)


def standardized(text: str, day: date = DAY, config: RulesConfig = RulesConfig(), **kwargs):
    return standardize(rows(text, **kwargs), day, config)


def one_row(line: str, day: date = DAY, config: RulesConfig = RulesConfig()):
    """Standardize a single data row; returns (readings, rejected)."""
    result = standardized(HEADER + line + "\n", day, config)
    return result.readings, result.rejected


def day_csv(meter: str, day: date, values_kw, start_slot: int = 0, unit="kW") -> str:
    """Data lines of one meter on one day: one reading per 15-minute slot from start_slot."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    lines = []
    for i, value in enumerate(values_kw):
        ts = start + timedelta(minutes=15 * (start_slot + i))
        lines.append(f"{meter},{ts:%Y-%m-%dT%H:%M:%SZ},{value},{unit}")
    return "\n".join(lines) + "\n"


def window_readings(days: dict[date, str], config: RulesConfig = RulesConfig()) -> pl.DataFrame:
    """Standardized readings of several days, each day from its own CSV (its own date folder)."""
    frames = [
        standardized(HEADER + text, day, config, key=f"raw-data/{day}/a.csv").readings
        for day, text in days.items()
    ]
    return pl.concat(frames)
