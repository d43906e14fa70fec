"""Retries of every step that touches S3 or PostgreSQL (SPEC §6): 3 retries after 2 s, 4 s, 8 s.

Dagster's own exponential backoff waits (2^n − 1) × delay (2 s, 6 s, 14 s), so
the steps request their retries themselves with the spec's delays. Only
storage faults are retried: a bug in the rules fails at once.
"""

from __future__ import annotations

from contextlib import contextmanager

import adbc_driver_manager
import botocore.exceptions
import dagster as dg
import psycopg

from greenstream_dagster.defs.metadata import Stopwatch
from greenstream_dagster.services.service_faults import fault_reason, storage_fault
from greenstream_dagster.settings import load_settings

MAX_RETRIES = 3
FIRST_DELAY_SECONDS = 2

# Faults of the services, not of the data: connection refused, timeouts, 5xx, a dropped session.
STORAGE_ERRORS = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    ConnectionError,
    TimeoutError,
)
# ADBC (the bulk load) reports a lost PostgreSQL server as these.
STORAGE_ERRORS += (adbc_driver_manager.OperationalError, adbc_driver_manager.InternalError)


def backoff_seconds(retry_number: int) -> int:
    """Wait before retry `retry_number + 1`: 2, 4, 8 seconds."""
    return FIRST_DELAY_SECONDS * 2**retry_number


@contextmanager
def retry_storage_faults(context):
    """Turn a storage fault into a Dagster retry with the spec's backoff."""
    try:
        yield
    except STORAGE_ERRORS as error:
        retry = context.retry_number
        if retry >= MAX_RETRIES:
            raise _exhausted(error) from None
        context.log.warning(f"storage fault, retry {retry + 1} of {MAX_RETRIES} in {backoff_seconds(retry)} s: {error}")
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=backoff_seconds(retry)) from error


def _exhausted(error: Exception) -> dg.Failure:
    """The last failure names the setting most likely at fault, in one bounded line, instead of
    a driver's traceback; the driver's own words stay in the metadata."""
    settings = load_settings()
    return dg.Failure(
        description=f"storage fault after {MAX_RETRIES} retries: " + storage_fault(
            error, endpoint_url=settings.s3_endpoint_url, bucket=settings.bucket, database_url=settings.database_url),
        metadata={"error": f"{type(error).__name__}: {fault_reason(error, settings.database_url, limit=1000)}"},
        allow_retries=False,
    )


# Checked assets run one partition per run, so a range backfill splits per day:
# a multi-partition run loses the per-partition check results in Dagster 1.13.
ONE_PARTITION_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def one_day(partitions: dg.PartitionsDefinition) -> dict:
    """Decorator arguments every asset shares: daily partitions, one partition per run."""
    return {"partitions_def": partitions, "backfill_policy": ONE_PARTITION_PER_RUN}


@contextmanager
def storage_step(context, s3):
    """The start of every step that touches storage: a stopwatch and an S3 client, with the
    spec's retries around the body."""
    with retry_storage_faults(context):
        yield Stopwatch(), s3.client(), s3.bucket
