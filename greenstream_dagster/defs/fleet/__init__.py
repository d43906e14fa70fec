"""The fleet domain: the meter registry and the silent meters of each day (SPEC §3a)."""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.defs.fleet.assets import build_fleet_assets
from greenstream_dagster.settings import Settings


def build_defs(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    return dg.Definitions(assets=build_fleet_assets(partitions, settings.rules.silent_lookback_days))
