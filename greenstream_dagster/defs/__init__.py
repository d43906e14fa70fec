"""Dagster wiring: assets, checks, sensor, schedules and resources, assembled by `definitions`."""
