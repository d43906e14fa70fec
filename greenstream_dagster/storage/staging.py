"""Intermediate frames of the asset graph, as Parquet in S3 (SPEC §6).

Each partitioned asset writes its frames under `staging/<asset>/date=YYYY-MM-DD/<name>.parquet`,
so runs in separate processes (or on separate machines) share them. One object
per frame: S3 shows it whole or not at all. Readers ask only for the columns
they need; a day that was never materialized reads as None.
"""

from __future__ import annotations

import io
from datetime import date

import polars as pl

STAGING_PREFIX = "staging/"


def staging_key(asset: str, day: date, name: str) -> str:
    return f"{STAGING_PREFIX}{asset}/date={day.isoformat()}/{name}.parquet"


def write_frame(client, bucket: str, asset: str, day: date, name: str, frame: pl.DataFrame) -> int:
    """Store one frame (zstd: intermediate data is read back soon, by machines). Returns bytes written."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=False)
    data = buffer.getvalue()
    client.put_object(Bucket=bucket, Key=staging_key(asset, day, name), Body=data)
    return len(data)


def read_frame(
    client, bucket: str, asset: str, day: date, name: str, columns: list[str] | None = None
) -> pl.DataFrame | None:
    try:
        body = client.get_object(Bucket=bucket, Key=staging_key(asset, day, name))["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return pl.read_parquet(io.BytesIO(body), columns=columns)
