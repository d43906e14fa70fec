"""The fleet (SPEC §3a): the meter registry and the silent meters of each day, with the `silent_meters` check.

`meter_registry` records which meters had a placeable row on D (from the day's
per-meter statistics, never by re-reading readings) and brings the registry
`meters` up to date; `silent_meters` compares D with the look-back D-L..D-1.
The latter reads the registry days D-L..D through a time-window partition
mapping, so a day whose readings change (a backlog file) re-runs its registry
day and then, by the automation condition below, every already-materialized
silent-meter day whose look-back contains it: the silence it filled is cleared
and the later days' `last_seen` moves forward.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import polars as pl

from greenstream_dagster.asset_names import REGISTRY, SILENT, STANDARDIZED
from greenstream_dagster.defs.partitions import partition_day
from greenstream_dagster.defs.pending_days import wait_for_pending_days
from greenstream_dagster.defs.policies import late_data_propagates, one_day, storage_step
from greenstream_dagster.defs.readings.assets import read_upstream
from greenstream_dagster.defs.resources import OperationalStoreResource, RulesResource, S3Resource
from greenstream_dagster.rules.meter_registry import day_presence
from greenstream_dagster.rules.silent_meters import fleet_day, silent_meters
from greenstream_dagster.storage import lake, staging
from greenstream_dagster.storage.fleet_lake import write_registry_snapshot
from greenstream_dagster.storage.operational.fleet import (
    fetch_lookback,
    fetch_registry,
    record_day_presence,
    store_silent_meters,
)

LOOKBACK_WAIT_SECONDS = 30
LOOKBACK_WAIT_RETRIES = 10

# Re-run an already-materialized day when a day it reads was re-materialized (the late-data
# cascade of SPEC §6 for the fleet); a day never materialized is left to the sensor and backfills.
FLEET_CASCADE = late_data_propagates()


def build_fleet_assets(partitions: dg.PartitionsDefinition, lookback_days: int = 30) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name=REGISTRY, **one_day(partitions), group_name="fleet", kinds={"postgres", "parquet"},
        deps=[STANDARDIZED], automation_condition=FLEET_CASCADE,
        description="The meters with a placeable row on the day, recorded in the registry `meters` "
        "(first_seen, last_seen, last_reading_ts, days_seen) and its lake snapshot analytics/meters/.",
    )
    def meter_registry(context, s3: S3Resource, operational: OperationalStoreResource) -> dg.MaterializeResult:
        day = partition_day(context)
        with storage_step(context, s3) as (watch, client, bucket):
            url = operational.url()
            with watch.stage("read"):
                stats = _meter_stats(context, client, bucket, day)
            presence = day_presence(stats, day)
            with watch.stage("registry"):
                update = record_day_presence(url, day, presence)
            with watch.stage("lake"):
                written = write_registry_snapshot(client, bucket, fetch_registry(url))
        return dg.MaterializeResult(metadata={
            "meters_on_day": update.meters_on_day,
            "new_meters": update.new_meters,
            "registry_meters": update.registry_meters,
            "presence_rows_changed": update.presence_changed,
            "registry_rows_changed": update.registry_changed,
            "lake_key": written.key,
            **watch.metadata(update.meters_on_day),
        })

    @dg.asset(
        name=SILENT, **one_day(partitions), group_name="fleet", kinds={"postgres", "parquet"},
        deps=[dg.AssetDep(REGISTRY, partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-lookback_days, allow_nonexistent_upstream_partitions=True))],
        automation_condition=FLEET_CASCADE,
        check_specs=[dg.AssetCheckSpec(SILENT, asset=SILENT, partitions_def=partitions,
                                       description="Silent meters of the day as a share of the known fleet.")],
        description=f"Meters seen in the {lookback_days} days before the day but not on it, with last_seen and "
        "silent_days: PostgreSQL silent_meters and analytics/silent_meters/year=/month=/day=. "
        "Reports the fleet's size, new, silent and returning meters per day.",
    )
    def silent_meters_asset(context, s3: S3Resource, operational: OperationalStoreResource,
                            rules: RulesResource) -> dg.MaterializeResult:
        day = partition_day(context)
        config = rules.config()
        lookback = config.silent_lookback_days
        with storage_step(context, s3) as (watch, client, bucket):
            url = operational.url()
            with watch.stage("read"):
                stored = fetch_lookback(url, day, lookback, config.partitions_start)
                if not stored.day_recorded:
                    # A backfill's look-back mapping reaches days (today) whose registry is not
                    # recorded yet: the day counts as one without meters, and is re-run by the
                    # cascade once its registry day is materialized (SPEC §6: every partition).
                    context.log.warning(f"{REGISTRY} {day} has not been materialized: the day is read as "
                                        "one without meters")
                _wait_for_lookback(context, client, bucket, day, stored.missing_days, config.window_days)
            with watch.stage("silent"):
                silent = silent_meters(stored.last_seen.lazy(), stored.day_meters.lazy(), day, lookback)
                fleet = fleet_day(stored.last_seen.lazy(), stored.day_meters.lazy(), silent,
                                  stored.new_meters.lazy(), day, lookback)
            with watch.stage("store"):
                changed = store_silent_meters(url, day, silent)
            with watch.stage("lake"):
                written = lake.write_lake_day(client, bucket, SILENT, day, silent)
        warn = fleet.exceeds(rules.silent_warn_share)
        longest = ", ".join(
            f"{m} ({d} d)" for m, d in silent.head(len(fleet.longest_silent)).select("meter_id", "silent_days").rows()
        ) or "none"
        check = dg.AssetCheckResult(
            check_name=SILENT, asset_key=SILENT, passed=not warn, severity=dg.AssetCheckSeverity.WARN,
            description=f"{fleet.silent} of {fleet.known_fleet} meters of the look-back silent "
            f"({fleet.silent_share:.2%}); limit {rules.silent_warn_share:.2%}",
            metadata={
                "silent_meters": fleet.silent,
                "known_fleet": fleet.known_fleet,
                "share": round(fleet.silent_share, 6),
                "warn_share": rules.silent_warn_share,
                "longest_silent_meter_ids": longest,
            },
        )
        return dg.MaterializeResult(
            metadata={
                "fleet_size": fleet.known_fleet,
                "reporting_meters": fleet.reporting,
                "new_meters": fleet.new,
                "silent_meters": fleet.silent,
                "returning_meters": fleet.returning,
                "silent_share": round(fleet.silent_share, 6),
                "rows_changed": changed,
                "lookback_days": lookback,
                "lookback_days_not_recorded": len(stored.missing_days),
                "lake_key": written.key,
                **watch.metadata(fleet.silent),
            },
            check_results=[check],
        )

    return [meter_registry, silent_meters_asset]


def _meter_stats(context, client, bucket: str, day: date) -> pl.DataFrame:
    """The day's per-meter statistics; a frame staged before they carried `last_reading_ts`
    is completed from two columns of the day's readings."""
    stats = read_upstream(context, client, bucket, STANDARDIZED, day, "meter_stats")
    if "last_reading_ts" in stats.columns:
        return stats
    readings = staging.read_frame(client, bucket, STANDARDIZED, day, "readings",
                                  columns=["meter_id", "partition_date", "reading_ts"])
    return readings.group_by("meter_id", "partition_date").agg(pl.col("reading_ts").max().alias("last_reading_ts"))


def _wait_for_lookback(context, client, bucket: str, day: date, missing: list[date], recent_days: int) -> None:
    """Recent look-back days (within the fault window) still being recorded would read as silence:
    wait for them a while. Older unrecorded days (a registry introduced after the data) are
    reported in the metadata, not waited for."""
    wait_for_pending_days(
        context, client, bucket, [d for d in missing if d >= day - timedelta(days=recent_days)],
        waiting_for=REGISTRY, going_on="judging without them; this day is re-run automatically when they are recorded",
        seconds=LOOKBACK_WAIT_SECONDS, retries=LOOKBACK_WAIT_RETRIES,
    )
