"""A step's retry or refusal shown as the one line that says why, not a stack trace.

Dagster writes a STEP_UP_FOR_RETRY or STEP_FAILURE event with the error of the
exception: its stack (thirty lines of framework frames) and any chained cause (a
driver's traceback, a hundred more). A 25-second outage left about 420 lines to
say "the database was down, retried, then it worked", and a day before the start
date a wall of frames around one sentence. Dagster serializes a
DagsterUserCodeProcessError as the error info it carries (the way it shows errors
of another process), so these exceptions carry only their line. That is Dagster's
internal behaviour, hence the pin; test_storage_faults.py and test_partition_days.py
show the events of real runs.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.errors import DagsterUserCodeProcessError
from dagster._utils.error import SerializableErrorInfo


def _carry(error: Exception, line: str) -> None:
    # Both bases' __init__ chain into each other's (cooperative super()), so neither is called.
    Exception.__init__(error, line)
    error.user_code_process_error_infos = [SerializableErrorInfo(message=line, stack=[], cls_name=type(error).__name__)]


class OneLineRetry(dg.RetryRequested, DagsterUserCodeProcessError):
    """Dagster's RetryRequested, its error the one line."""

    def __init__(self, line: str, *, max_retries: int, seconds_to_wait: float):
        _carry(self, line)
        self.max_retries = max_retries
        self.seconds_to_wait = seconds_to_wait


class OneLineFailure(dg.Failure, DagsterUserCodeProcessError):
    """Dagster's Failure without metadata, its error the one line; never retried (it cannot get better)."""

    def __init__(self, line: str):
        _carry(self, line)
        self.description = line
        self.metadata = {}
        self.allow_retries = False
