"""Waiting, for a bounded time, for other days of a burst that are still being processed.

The sensor starts a burst of days together, so a day's window (the fault window of
scored_readings, the look-back of silent_meters) can hold days that have landing
files but are not processed yet. A step waits for them by asking Dagster to retry
it later; after the last wait it goes on with what it has and never fails the day:
the late-data cascade re-runs it once those days are processed.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from greenstream_dagster.storage import landing


def wait_for_pending_days(context, client, bucket: str, missing_days: list[date], *, waiting_for: str,
                          going_on: str, seconds: int, retries: int) -> None:
    """Retry the step in `seconds` while a missing day has landing files, at most `retries` times."""
    pending = [d for d in missing_days if landing.date_folder_has_objects(client, bucket, d)]
    if not pending:
        return
    days = ", ".join(map(str, pending))
    if context.retry_number >= retries:
        context.log.warning(f"days {days} have landing files but no {waiting_for} yet: {going_on}")
        return
    context.log.info(f"waiting {seconds} s for the {waiting_for} of {days}")
    raise dg.RetryRequested(max_retries=retries, seconds_to_wait=seconds)
