"""Content id of a reading (SPEC §2).

`record_id` = lowercase hex SHA-256 of `meter_id|YYYY-MM-DDTHH:MM:SSZ|value_text`,
value_text being the trimmed value as uploaded (empty when missing). Hashed
natively by polars-hash: no per-row Python.
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers the `chash` namespace)

from greenstream_dagster.rules.timestamps import format_timestamp_utc


def record_id(meter_id: pl.Expr, reading_ts: pl.Expr, value_raw: pl.Expr) -> pl.Expr:
    text = pl.concat_str(
        [meter_id, format_timestamp_utc(reading_ts), value_raw.fill_null("")], separator="|"
    )
    return text.chash.sha2_256()
