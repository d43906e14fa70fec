"""Daily partitions, one per UTC calendar day from the configured start (SPEC §6).

end_offset=1 makes today's partition exist already: meters upload all day, and
the sensor must be able to process today's folder before midnight.

A day outside them is refused in one line naming GREENSTREAM_PARTITIONS_START
(rules/partition_days.py), here for a run of any launcher in its first step.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from greenstream_dagster.defs.one_line import OneLineFailure
from greenstream_dagster.rules.partition_days import PARTITIONS_START_SETTING, partition_problem


def daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1, timezone="UTC")


def day_of_partition(key: str, start: date) -> date:
    """The partition's day, or a one-line Failure naming the setting (no retry: it cannot get better)."""
    problem = partition_problem(key, start)
    if problem is not None:
        raise OneLineFailure(f"{PARTITIONS_START_SETTING}: {problem}")
    return date.fromisoformat(key)


def partition_day(context) -> date:
    """The run's day; a day outside the partitions (however the run was launched) fails in one
    line naming GREENSTREAM_PARTITIONS_START."""
    from greenstream_dagster.settings import load_settings

    return day_of_partition(context.partition_key, load_settings().partitions_start)
