"""The late-data cascade's sensor: evaluates the assets' automation conditions (SPEC §6).

The conditions themselves live on the assets (`policies.late_data_propagates`).
This sensor runs them in the daemon every 15 s (GREENSTREAM_SENSOR_INTERVAL_SECONDS) and is on by default, so late data
propagates without anyone asking. It requests plain single-partition runs rather
than backfills: each carries its day's partition tag and queues behind any other
run of that day (see run_queue.py).
"""

from __future__ import annotations

import dagster as dg

SENSOR_NAME = "late_data_cascade"


def build_late_data_sensor(interval_seconds: int = 30) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        emit_backfills=False,
        description="Re-scores and reloads already-materialized days whose 7-day window holds a day "
        "whose standardized readings changed (a backlog file, a correction).",
    )
