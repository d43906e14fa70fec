"""The readings domain: raw → standardized → scored, the fault checks on the scored day."""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.defs.readings.assets import build_reading_assets
from greenstream_dagster.defs.readings.checks import build_fault_checks
from greenstream_dagster.settings import Settings


def build_defs(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    return dg.Definitions(assets=build_reading_assets(partitions, settings.rules.window_days),
                          asset_checks=build_fault_checks(partitions))
