"""Jobs: the sensor's per-partition ingest, the lake rollup and the retention (SPEC §6).

Every job runs one partition per run: the per-partition check results of
Dagster 1.13 are recorded only for single-partition runs, and the run queue
keeps two runs of the same partition from overlapping (see dagster.yaml).
"""


from datetime import date, datetime, timezone

import dagster as dg

from greenstream_dagster.asset_names import INGEST_ASSETS, LAKE_ASSETS
from greenstream_dagster.defs.policies import retry_storage_faults
from greenstream_dagster.defs.resources import OperationalStoreResource
from greenstream_dagster.storage.operational.retention import apply_retention

INGEST_JOB = "ingest_partition_job"  # the sensor's job: every run of it reads the landing zone


def build_jobs():
    """The sensor's ingest job and the rollup's lake job; their daily partitions come from the assets."""
    ingest = dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(*INGEST_ASSETS),
        description="raw → standardized → scored → PostgreSQL and lake for one partition day (the sensor's target).",
    )
    lake = dg.define_asset_job(
        "lake_rollup_job",
        selection=dg.AssetSelection.assets(*LAKE_ASSETS),
        description="Rewrite one day of the Parquet lake from its scored readings.",
    )
    return ingest, lake


class RetentionConfig(dg.Config):
    today: str = ""  # YYYY-MM-DD; empty: the run's own UTC date
    retention_days: int = 90


@dg.op(description="Drop operational day partitions older than the retention limit (never row DELETEs).")
def drop_expired_partitions(context, config: RetentionConfig, operational: OperationalStoreResource) -> None:
    today = date.fromisoformat(config.today) if config.today else datetime.now(timezone.utc).date()
    with retry_storage_faults(context):
        dropped = apply_retention(operational.url(), today, config.retention_days)
    context.log.info(f"retention {config.retention_days} days from {today}: dropped {len(dropped)} partitions {dropped}")


@dg.job(name="retention_job", description="90-day retention of the operational store.")
def retention_job():
    drop_expired_partitions()
