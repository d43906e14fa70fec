"""The names of the assets (SPEC §8): the contract the Dagster wiring, the journey and the
staging layout share. Plain strings, no Dagster: every layer may import this module."""

RAW = "raw_readings"
STANDARDIZED = "standardized_readings"
SCORED = "scored_readings"
LOAD = "meter_readings"  # the operational PostgreSQL store
LAKE_READINGS = "lake_readings"
LAKE_METER_DAILY = "lake_meter_daily"
REGISTRY = "meter_registry"
SILENT = "silent_meters"

LAKE_ASSETS = (LAKE_READINGS, LAKE_METER_DAILY)
# Everything one day's ingest run materializes (the sensor's job, replays).
INGEST_ASSETS = (RAW, STANDARDIZED, SCORED, LOAD, *LAKE_ASSETS, REGISTRY, SILENT)
