"""The code location (`dagster … -m greenstream_dagster.definitions`): it only assembles.

Settings are read and validated here, at load, and the configured services
checked (defs/code_location_start.py says in which processes), so bad
configuration stops the code location with one line naming the setting.
"""

from __future__ import annotations

import gc

import dagster as dg

from greenstream_dagster.defs import fleet, landing, operations, readings, stores
from greenstream_dagster.defs.code_location_start import settings_at_load
from greenstream_dagster.defs.executor import executor_for
from greenstream_dagster.defs.operations.jobs import build_jobs
from greenstream_dagster.defs.partitions import daily_partitions
from greenstream_dagster.defs.resources import OperationalStoreResource, RulesResource, S3Resource
from greenstream_dagster.defs.run_outputs import RUN_OUTPUTS, RunOutputsIOManager
from greenstream_dagster.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The domains' definitions merged, with what they share: the resources and the executor."""
    partitions = daily_partitions(settings.partitions_start)
    s3 = S3Resource(bucket=settings.bucket)
    ingest_job, lake_job = build_jobs()
    return dg.Definitions.merge(
        readings.build_defs(settings, partitions),
        stores.build_defs(partitions),
        fleet.build_defs(settings, partitions),
        landing.build_defs(settings, ingest_job),
        operations.build_defs(settings, ingest_job, lake_job),
        dg.Definitions(
            # GREENSTREAM_EXECUTOR; by default every step in the run's own process (defs/executor.py).
            executor=executor_for(settings),
            resources={
                "s3": s3,
                RUN_OUTPUTS: RunOutputsIOManager(s3=s3),
                "operational": OperationalStoreResource(),
                "rules": RulesResource.from_settings(settings),
            },
        ),
    )


defs = build_definitions(settings_at_load())

# Whatever exists now (Dagster, botocore, pandera, these definitions: hundreds of thousands of
# objects) lives as long as the process. Frozen, the cyclic collector stops re-scanning it at
# every full collection during a run and at interpreter exit (about a second per run process).
gc.freeze()
