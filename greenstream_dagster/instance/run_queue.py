"""The run queue: runs touching the same partition day never overlap (SPEC §6).

Dagster's `QueuedRunCoordinator` limits runs by tag, but the tag that names a
day differs with who launched the run: sensor, schedule and automation runs
carry `dagster/partition`, backfill runs `dagster/asset_partition_range_start`
and `…_end`, replays whatever their launcher set. A limit on any one of them
lets the others through. So every run is given one more tag, `greenstream/day`,
when it is submitted — the one place all launchers pass through — and
`dagster.yaml` limits that tag to one run per unique value.

A run over a range of days (our assets run one partition per run, but a user
can launch a range from the launchpad) is keyed by its whole range: it still
never overlaps another run of the same range, and the README says to keep
ranges to one day.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster._core.run_coordinator.base import SubmitRunContext
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG

DAY_TAG = "greenstream/day"


def day_of_run(tags: Mapping[str, str]) -> str | None:
    """The partition day (or day range) a run touches, from whichever tags its launcher set."""
    partition = tags.get(PARTITION_NAME_TAG)
    if partition:
        return partition
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}..{end}"
    return None


class DayQueuedRunCoordinator(QueuedRunCoordinator):
    """The queued coordinator, tagging each run with the day it touches before enqueueing it."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        day = day_of_run(run.tags)
        if day is not None and run.tags.get(DAY_TAG) != day:
            self._instance.add_run_tags(run.run_id, {DAY_TAG: day})
            run = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
