"""The stores domain: the operational PostgreSQL load and the Parquet lake of each day."""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.defs.stores.assets import build_store_assets


def build_defs(partitions: dg.PartitionsDefinition) -> dg.Definitions:
    return dg.Definitions(assets=build_store_assets(partitions))
