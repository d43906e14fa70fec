"""Content id of a reading (SPEC §2).

`record_id` = lowercase hex SHA-256 of `meter_id|YYYY-MM-DDTHH:MM:SSZ|value_text`,
value_text being the trimmed value as uploaded (empty when missing). Hashed
natively by polars-hash: no per-row Python.
"""

from __future__ import annotations

import polars as pl
import polars_hash as plh  # registers the `chash` namespace

from greenstream_dagster.rules.timestamps import timestamp_text


def record_id(meter_id: pl.Expr, timestamp_text: pl.Expr, value_raw: pl.Expr) -> pl.Expr:
    """`timestamp_text` is the canonical UTC text (see timestamps.timestamp_text)."""
    # plh.concat_str is pl.concat_str, typed as returning an expression with the `chash` namespace.
    text = plh.concat_str([meter_id, timestamp_text, value_raw.fill_null("")], separator="|")
    return text.chash.sha2_256()


def with_record_id(
    frame: pl.DataFrame, meter_id: str = "meter_id", reading_ts: str = "reading_ts", value_raw: str = "value_raw",
) -> pl.DataFrame:
    return frame.with_columns(
        record_id(pl.col(meter_id), pl.lit(timestamp_text(frame, reading_ts)), pl.col(value_raw)).alias("record_id")
    )
