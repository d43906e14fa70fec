"""Retries of every step that touches S3 or PostgreSQL (SPEC §6): 3 retries after 2 s, 4 s, 8 s.

Dagster's own exponential backoff waits (2^n − 1) × delay (2 s, 6 s, 14 s), so
the steps request their retries themselves with the spec's delays. Only
storage faults are retried: a bug in the rules fails at once.
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

import adbc_driver_manager
import botocore.exceptions
import dagster as dg
import psycopg

from greenstream_dagster.defs.metadata import Stopwatch
from greenstream_dagster.defs.one_line import OneLineRetry
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
    """Turn a storage fault into a Dagster retry with the spec's backoff.

    A retry is one line of the run's log: the step, the attempt, the wait and the cause
    in the words of the settings check (defs/one_line.py). The driver's traceback is kept
    once, in the metadata of the last failure.
    """
    try:
        yield
    except STORAGE_ERRORS as error:
        retry = context.retry_number
        if retry >= MAX_RETRIES:
            raise _exhausted(error) from None
        wait = backoff_seconds(retry)
        line = f"{_step(context)}attempt {retry + 1} failed, retry {retry + 1} of {MAX_RETRIES} in {wait} s: {_cause(error)}"
        raise OneLineRetry(line, max_retries=MAX_RETRIES, seconds_to_wait=wait) from None


def _cause(error: Exception) -> str:
    settings = load_settings()
    return storage_fault(error, endpoint_url=settings.s3_endpoint_url, bucket=settings.bucket,
                         database_url=settings.database_url)


def _step(context) -> str:
    """The step's name and a colon, where the context knows it (an op's or an asset's)."""
    try:
        return f"{context.op.name}: "
    except Exception:  # a context without an op (a sensor's, a test's)
        return ""


def _exhausted(error: Exception) -> dg.Failure:
    """The last failure names the setting most likely at fault, in one bounded line; the
    driver's own words and its traceback (once, passwords masked) stay in the metadata."""
    settings = load_settings()
    return dg.Failure(
        description=f"storage fault after {MAX_RETRIES} retries: " + _cause(error),
        metadata={"error": f"{type(error).__name__}: {fault_reason(error, settings.database_url, limit=1000)}",
                  "traceback": dg.MetadataValue.text(masked_traceback(error, settings.database_url))},
        allow_retries=False,
    )


def masked_traceback(error: Exception, database_url: str | None, limit: int = 20_000) -> str:
    """The error's traceback with its causes, the database password masked, bounded in size."""
    text = "".join(traceback.format_exception(error))
    password = urlparse(database_url).password if database_url else None
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return text if len(text) <= limit else text[:limit] + "\n…[cut]"


# Checked assets run one partition per run, so a range backfill splits per day:
# a multi-partition run loses the per-partition check results in Dagster 1.13.
ONE_PARTITION_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def one_day(partitions: dg.PartitionsDefinition) -> dict:
    """Decorator arguments every asset shares: daily partitions, one partition per run."""
    return {"partitions_def": partitions, "backfill_policy": ONE_PARTITION_PER_RUN}


def late_data_propagates() -> dg.AutomationCondition:
    """Re-materialize an already-materialized day when an upstream day it reads has changed (SPEC §6).

    A backlog file re-runs its day D; scored_readings of D+1..D+6 read D through their
    7-day window, and the stores read the scored days. Each such partition is requested
    once per change (since it was last requested or materialized), only if it was
    materialized before (the cascade never creates days), and only when nothing it
    reads is still running. The day's own ingest run updates its upstream and then the
    partition itself, which resets the condition, so ordinary ingestion requests nothing
    extra. Dagster's `any_deps_updated` is not used: it ignores an upstream update when
    the run that made it selected the downstream asset for *any* partition, which is
    exactly the backlog run of day D (it selects scored_readings for D, and D+1 is missed).
    Declarative, so the UI shows for every run which upstream change caused it.
    """
    upstream_changed = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.newly_updated() | dg.AutomationCondition.will_be_requested()
    ).with_label("an upstream day changed")
    return (
        upstream_changed.since_last_handled()
        & ~dg.AutomationCondition.missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("late data in an upstream day")


def with_its_asset() -> dg.AutomationCondition:
    """A check runs whenever the automation requests the asset it checks (in the same run)."""
    return dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested()).with_label(
        "its asset is requested"
    )


@contextmanager
def storage_step(context, s3):
    """The start of every step that touches storage: a stopwatch and an S3 client, with the
    spec's retries around the body."""
    with retry_storage_faults(context):
        yield Stopwatch(), s3.client(), s3.bucket
