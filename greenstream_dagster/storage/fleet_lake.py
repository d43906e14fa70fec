"""The meter registry in the lake (SPEC §3a): `analytics/meters/part-0.parquet`, one current snapshot.

The registry is not a day's data but the state after every materialized day, so
the lake keeps one object, replaced whole by a single PUT after each update: a
reader sees the previous snapshot or the new one, never a mix.
"""

from __future__ import annotations

import io

import polars as pl

from greenstream_dagster.rules.meter_registry import REGISTRY_COLUMNS
from greenstream_dagster.storage.lake import LAKE_PREFIX, PART_NAME, LakeWrite

REGISTRY_KEY = f"{LAKE_PREFIX}meters/{PART_NAME}"


def write_registry_snapshot(client, bucket: str, registry: pl.DataFrame) -> LakeWrite:
    shaped = registry.select(list(REGISTRY_COLUMNS)).cast(REGISTRY_COLUMNS).sort("meter_id")
    buffer = io.BytesIO()
    shaped.write_parquet(buffer, compression="snappy", statistics=True)
    data = buffer.getvalue()
    client.put_object(Bucket=bucket, Key=REGISTRY_KEY, Body=data, ContentType="application/vnd.apache.parquet")
    return LakeWrite(key=REGISTRY_KEY, bytes=len(data), rows=shaped.height)


def read_registry_snapshot(client, bucket: str) -> pl.DataFrame:
    try:
        body = client.get_object(Bucket=bucket, Key=REGISTRY_KEY)["Body"].read()
    except client.exceptions.NoSuchKey:
        return pl.DataFrame(schema=REGISTRY_COLUMNS)
    return pl.read_parquet(io.BytesIO(body))
