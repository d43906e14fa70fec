"""The Dagster run that wrote a stored row: the partition's meter_readings materializations.

meter_readings upserts only rows that differ and stamps them `loaded_at =
now()` inside the run, before the materialization event is stored. So the run
that last wrote the row is the earliest materialization of the partition at or
after `loaded_at`; later ones re-read the day and left the row as it was.
(Both clocks must roughly agree: PostgreSQL's for loaded_at, the Dagster
host's for the event. If no materialization follows loaded_at, the latest is
taken.)
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import dagster as dg

from greenstream_dagster.asset_names import LOAD
from greenstream_dagster.journey.facts import Trigger

STORE_ASSET = LOAD
RECENT_MATERIALIZATIONS = 50


def open_instance() -> tuple[dg.DagsterInstance | None, str | None]:
    """The instance of DAGSTER_HOME, or None and the reason the run will be unknown."""
    if not os.environ.get("DAGSTER_HOME"):
        return None, ("DAGSTER_HOME is not set, so the Dagster instance that ran the pipeline is unknown "
                      "(greenstream dev uses <data dir>/dagster_home)")
    try:
        return dg.DagsterInstance.get(), None
    except Exception as error:  # a broken dagster.yaml or unreachable storage must not hide the rest
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"the Dagster instance of DAGSTER_HOME could not be opened ({first_line})"


def find_trigger(
    instance: dg.DagsterInstance | None, partition_key: str, loaded_at: datetime | None,
    unknown_reason: str | None = None,
) -> Trigger:
    if instance is None:
        return Trigger(partition_key=partition_key, unknown_reason=unknown_reason or "no Dagster instance")
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(STORE_ASSET), asset_partitions=[partition_key]),
        limit=RECENT_MATERIALIZATIONS,
    ).records  # newest first
    if not records:
        return Trigger(partition_key=partition_key, unknown_reason=(
            f"the Dagster instance holds no materialization of {STORE_ASSET} for partition {partition_key}"))
    writer_index = 0
    if loaded_at is not None:
        after = [i for i, record in enumerate(records) if record.timestamp >= loaded_at.timestamp()]
        if after:
            writer_index = after[-1]
    writer = records[writer_index]
    later = tuple(dict.fromkeys(r.run_id for r in reversed(records[:writer_index]) if r.run_id != writer.run_id))
    record = instance.get_run_record_by_id(writer.run_id)
    run = record.dagster_run if record is not None else None
    return Trigger(
        partition_key=partition_key,
        run_id=writer.run_id,
        job_name=run.job_name if run else None,
        status=run.status.value if run else None,
        started_at=_moment(record.start_time) if record else None,
        ended_at=_moment(record.end_time) if record else None,
        materialized_at=_moment(writer.timestamp),
        tags=dict(run.tags) if run else {},
        later_run_ids=later,
    )


def _moment(epoch_seconds: float | None) -> datetime | None:
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
