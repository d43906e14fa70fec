"""Frames with the dtypes of rules/schemas.py, built inline for the operational-store tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl

from greenstream_dagster.rules.schemas import REJECTED_COLUMNS, REVISION_COLUMNS, SCORED_COLUMNS

DAY = date(2024, 4, 15)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def scored(day: date = DAY, meters: int = 4, slots: int = 96) -> pl.DataFrame:
    """meters × slots scored readings of one day: meter SM-1.., one per 15-minute slot."""
    grid = pl.DataFrame({"meter": pl.int_range(1, meters + 1, eager=True)}).join(
        pl.DataFrame({"slot": pl.int_range(slots, eager=True)}), how="cross"
    )
    ts = pl.lit(day_start(day), dtype=pl.Datetime("us", "UTC")) + pl.duration(minutes=pl.col("slot") * 15)
    value = (pl.col("meter") * 100 + pl.col("slot")).cast(pl.Utf8)
    return grid.select(
        meter_id=pl.format("SM-{}", pl.col("meter")),
        reading_ts=ts,
        partition_date=pl.lit(day),
        value_raw=value,
        unit_raw=pl.lit("W"),
        value_kw=value.cast(pl.Float64) / 1000,
        tariff_period=pl.lit("OFF_PEAK"),
        season=pl.lit("SPRING"),
        validation_errors=pl.lit([], dtype=pl.List(pl.Utf8)),
        out_of_range=pl.lit(False),
        revised=pl.lit(False),
        is_spike=pl.lit(False),
        meter_stuck=pl.lit(False),
        meter_gap=pl.lit(False),
        quality_score=pl.lit(100),
        quality_grade=pl.lit("A"),
        source_key=pl.lit(f"raw-data/{day}/readings.csv"),
        source_line=pl.col("meter") * 1000 + pl.col("slot") + 2,
    ).cast(SCORED_COLUMNS)


def rejected(day: date = DAY, lines: tuple[int, ...] = (2, 7), reason: str = "INVALID_METER_ID") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "partition_date": [day] * len(lines),
            "source_key": [f"raw-data/{day}/readings.csv"] * len(lines),
            "source_line": list(lines),
            "raw_line": [f"sm-{n},{day}T00:00:00Z,1,kW" for n in lines],
            "reason": [reason] * len(lines),
        },
        schema=REJECTED_COLUMNS,
    )


def revisions(day: date = DAY, meter_id: str = "SM-1", slot: int = 0, record_ids=("a" * 64,)) -> pl.DataFrame:
    ts = day_start(day) + timedelta(minutes=15 * slot)
    return pl.DataFrame(
        {
            "partition_date": [day] * len(record_ids),
            "meter_id": [meter_id] * len(record_ids),
            "reading_ts": [ts] * len(record_ids),
            "record_id": list(record_ids),
            "value_raw": ["1"] * len(record_ids),
            "unit_raw": ["kW"] * len(record_ids),
            "source_key": [f"raw-data/{day}/early.csv"] * len(record_ids),
            "source_line": list(range(2, 2 + len(record_ids))),
            "superseded_by": ["b" * 64] * len(record_ids),
        },
        schema=REVISION_COLUMNS,
    )


def no_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_COLUMNS)


def no_revisions() -> pl.DataFrame:
    return pl.DataFrame(schema=REVISION_COLUMNS)
