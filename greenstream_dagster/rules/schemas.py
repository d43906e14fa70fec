"""Column contracts of the frames the rules produce (SPEC §2, §4, §5, §8).

The Polars dtypes are the single source: the pandera schemas, the PostgreSQL
tables and the lake files are all derived from or checked against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import pandera.polars as pa
import polars as pl

# A column's dtype as the contracts write it: a class (pl.Utf8) or an instance (pl.Datetime("us", "UTC")).
ColumnDtype: TypeAlias = pl.DataType | type[pl.DataType]
# A frame's columns, name → dtype, in order. Frames are cast to them as `frame.cast(pl.Schema(columns))`:
# Polars types `cast`'s mapping with an invariant key type (str | selector | dtype), which refuses any
# `Mapping[str, ...]` (pola-rs/polars#14468); a pl.Schema is the typed way, cast the same.
Columns: TypeAlias = Mapping[str, ColumnDtype]

UTC_TIMESTAMP = pl.Datetime("us", "UTC")

QUARANTINE_REASONS = (
    "MALFORMED_ROW",
    "MISSING_METER_ID",
    "INVALID_METER_ID",
    "MISSING_TIMESTAMP",
    "INVALID_TIMESTAMP",
    "TIMESTAMP_OUTSIDE_PARTITION",
)
VALIDATION_ERRORS = ("INVALID_VALUE", "UNIT_NOT_ALLOWED")
TARIFF_PERIODS = ("PEAK", "OFF_PEAK")
SEASONS = ("WINTER", "SPRING", "SUMMER", "AUTUMN")
GRADES = ("A", "B", "C", "F")

# Rows of a landing file as text, with their provenance (output of csv_file).
RAW_ROW_COLUMNS: Columns = {
    "source_key": pl.Utf8,
    "source_modified_at": UTC_TIMESTAMP,
    "source_line": pl.Int64,
    "line_count": pl.Int64,  # physical lines the row spans (more than 1 for a quoted multi-line record)
    "raw_line": pl.Utf8,
    "field_count_ok": pl.Boolean,
    "meter_id": pl.Utf8,
    "timestamp": pl.Utf8,
    "value": pl.Utf8,
    "unit": pl.Utf8,
}

# One winning reading per interval key of the partition day. Its record_id is not carried:
# it is derived from meter_id, reading_ts and value_raw where it is stored (PostgreSQL), and
# 4.8 million 64-character hashes would be most of every staged frame and of the memory.
STANDARDIZED_COLUMNS: Columns = {
    "meter_id": pl.Utf8,
    "reading_ts": UTC_TIMESTAMP,
    "partition_date": pl.Date,
    "value_raw": pl.Utf8,
    "unit_raw": pl.Utf8,
    "value_kw": pl.Float64,
    "tariff_period": pl.Utf8,
    "season": pl.Utf8,
    "validation_errors": pl.List(pl.Utf8),
    "out_of_range": pl.Boolean,
    "revised": pl.Boolean,
    "source_key": pl.Utf8,
    "source_line": pl.Int64,
}

# Scored readings: the columns of PostgreSQL meter_readings except record_id and loaded_at.
SCORED_COLUMNS: Columns = {
    **STANDARDIZED_COLUMNS,
    "is_spike": pl.Boolean,
    "meter_stuck": pl.Boolean,
    "meter_gap": pl.Boolean,
    "quality_score": pl.Int32,
    "quality_grade": pl.Utf8,
}
# The contract's column order of meter_readings (SPEC §8).
METER_READING_COLUMN_ORDER = (
    "record_id", "meter_id", "reading_ts", "partition_date", "value_raw", "unit_raw",
    "value_kw", "tariff_period", "season", "validation_errors", "out_of_range", "revised",
    "is_spike", "meter_stuck", "meter_gap", "quality_score", "quality_grade",
    "source_key", "source_line",
)
SCORED_COLUMNS = {name: SCORED_COLUMNS[name] for name in METER_READING_COLUMN_ORDER if name != "record_id"}
# What the load writes to meter_readings: record_id is added from the scored columns.
METER_READING_COLUMNS: Columns = {
    name: pl.Utf8 if name == "record_id" else SCORED_COLUMNS[name] for name in METER_READING_COLUMN_ORDER
}

# Lake readings have no record_id either: it is derivable and would outweigh the rest (SPEC §8).
LAKE_READING_COLUMNS: Columns = dict(SCORED_COLUMNS)

REJECTED_COLUMNS: Columns = {
    "partition_date": pl.Date,
    "source_key": pl.Utf8,
    "source_line": pl.Int64,
    "raw_line": pl.Utf8,
    "reason": pl.Utf8,
}

# Audit of superseded readings: one row per distinct losing record_id of a key.
REVISION_COLUMNS: Columns = {
    "partition_date": pl.Date,
    "meter_id": pl.Utf8,
    "reading_ts": UTC_TIMESTAMP,
    "record_id": pl.Utf8,
    "value_raw": pl.Utf8,
    "unit_raw": pl.Utf8,
    "source_key": pl.Utf8,
    "source_line": pl.Int64,
    "superseded_by": pl.Utf8,
}

# SPEC §3b: one estimated slot of a short gap run, apart from the readings (PostgreSQL
# estimated_readings adds estimated_at; the lake analytics/estimated/ is exactly these).
ESTIMATE_COLUMNS: Columns = {
    "partition_date": pl.Date,
    "meter_id": pl.Utf8,
    "slot_ts": UTC_TIMESTAMP,
    "value_kw": pl.Float64,
    "method": pl.Utf8,
    "from_reading_ts": UTC_TIMESTAMP,  # the two bounding usable readings interpolated between
    "to_reading_ts": UTC_TIMESTAMP,
}
ESTIMATE_KEY = ("meter_id", "slot_ts")

METER_DAILY_COLUMNS: Columns = {
    "meter_id": pl.Utf8,
    "date": pl.Date,
    "readings": pl.UInt32,
    "usable_readings": pl.UInt32,
    "energy_kwh": pl.Float64,
    "peak_kwh": pl.Float64,
    "max_kw": pl.Float64,
    "mean_kw": pl.Float64,
    "variance_kw2": pl.Float64,
    "stuck": pl.Boolean,
    "spike_count": pl.UInt32,
    "missing_rate_7d": pl.Float64,
    "gap": pl.Boolean,
    "reliable": pl.Boolean,
    "grade_a": pl.UInt32,
    "grade_b": pl.UInt32,
    "grade_c": pl.UInt32,
    "grade_f": pl.UInt32,
    "mean_score": pl.Float64,
    "estimated_slots": pl.UInt32,  # §3b: slots filled by estimates, and their energy (never in energy_kwh)
    "energy_kwh_estimated": pl.Float64,
}

METER_ID_PATTERN = r"^SM-[0-9]{1,12}$"  # SPEC §2: a placeable meter_id (case-sensitive)
_NULLABLE = {"value_raw", "unit_raw", "value_kw", "variance_kw2", "max_kw", "mean_kw"}


def _column(name: str, dtype: ColumnDtype) -> pa.Column:
    checks = {
        "meter_id": pa.Check.str_matches(METER_ID_PATTERN),
        "tariff_period": pa.Check.isin(TARIFF_PERIODS),
        "season": pa.Check.isin(SEASONS),
        "quality_score": pa.Check.in_range(0, 100),
        "quality_grade": pa.Check.isin(GRADES),
        "source_line": pa.Check.ge(2),
        "missing_rate_7d": pa.Check.in_range(0.0, 1.0),
    }
    check = checks.get(name)
    return pa.Column(dtype, checks=[check] if check else None, nullable=name in _NULLABLE)


def _schema(name: str, columns: Columns, unique: list[str] | None = None) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {k: _column(k, v) for k, v in columns.items()}, name=name, strict=True, unique=unique
    )


# The readings' key uniqueness is checked beside these (reading_order.duplicate_keys): pandera's
# own check groups 4.8 million keys, which costs more than all the column checks together.
READING_KEY = ("meter_id", "reading_ts")
StandardizedSchema = _schema("standardized_readings", STANDARDIZED_COLUMNS)
ScoredSchema = _schema("scored_readings", SCORED_COLUMNS)
MeterDailySchema = _schema("lake_meter_daily", METER_DAILY_COLUMNS, ["meter_id", "date"])


def empty_frame(columns: Columns) -> pl.DataFrame:
    return pl.DataFrame(schema=columns)
