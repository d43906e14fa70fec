"""The code location's start: settings read and configured services checked once, at load (SPEC §7).

`dagster dev`, `dagster asset materialize -m greenstream_dagster.definitions`,
`dagster definitions validate`, the code server: each imports the definitions
first, so that import is where bad configuration must stop, with one line
naming the setting.

Which processes check the services. Run workers import the definitions too
(`dagster api execute_run|resume_run|execute_step`, and the spawned
processes of the code server's run launcher and of the multiprocess
executor), and there a refused connection is not a bad setting: it is an
outage during operation, which the steps' 2/4/8 s retries must ride out
(SPEC §6) — a check in a step worker started while PostgreSQL restarts would
turn that outage into a hard failure before any retry. So run workers only
read the settings (a malformed value still fails there, as it never gets
better by waiting) and leave the services to the steps. Every other process
checks what is configured, with short timeouts, once per process. Nothing
embedded is started here: with nothing configured the servers start on first
use, so importing the definitions (tests do) starts nothing.

How the error is shown. The `dagster` CLI is a click program that prints a
`click.ClickException` as one `Error: …` line and exits 1, and Dagster lets
the exception out of the import unchanged for `asset materialize`,
`job execute` and `asset list`; so the error raised here is both a
ConfigurationError and a ClickException. What Dagster does not allow:
`definitions validate` and the code server (`dagster dev`, `code-server
start`) catch load errors and print them as "Validation failed … Stack
Trace:" with the user frames (a few lines, the message first) — the code
server must keep serving so the UI can show the error, so exiting there is
not an option.
"""

from __future__ import annotations

import multiprocessing
import sys

import click

from greenstream_dagster.rules.partition_days import PARTITIONS_START_SETTING, partition_problem, requested_partitions
from greenstream_dagster.services.runtime import check_configured_services
from greenstream_dagster.settings import ConfigurationError, Settings, load_settings

LOAD_CHECK_TIMEOUT_SECONDS = 3
RUN_WORKER_COMMANDS = frozenset({"execute_run", "resume_run", "execute_step"})

_checked: set[tuple] = set()


class ConfigurationErrorAtLoad(ConfigurationError, click.ClickException):
    """A ConfigurationError the `dagster` CLI prints as one line, without a traceback."""

    def __init__(self, setting: str, problem: str):
        ConfigurationError.__init__(self, setting, problem)
        click.ClickException.__init__(self, f"{setting}: {problem}")


def is_run_worker(argv: list[str] | None = None) -> bool:
    """A process that executes runs or steps, not one that starts the code location."""
    if multiprocessing.parent_process() is not None:
        return True  # the code server's run processes and the multiprocess executor's steps
    argv = sys.argv if argv is None else argv
    return any(arg == "api" and following in RUN_WORKER_COMMANDS for arg, following in zip(argv, argv[1:]))


def settings_at_load() -> Settings:
    """Read the settings and, outside run workers, check the configured services (once per process)."""
    try:
        settings = load_settings()
        key = (settings.s3_endpoint_url, settings.bucket, settings.aws_access_key_id,
               settings.aws_secret_access_key, settings.aws_region, settings.database_url)
        if key not in _checked and not is_run_worker():
            check_configured_services(settings, timeout=LOAD_CHECK_TIMEOUT_SECONDS)
            _checked.add(key)
    except ConfigurationError as error:
        raise ConfigurationErrorAtLoad(error.setting, str(error).split(": ", 1)[1]) from None
    _refuse_requested_partitions(settings, sys.argv)
    return settings


def _refuse_requested_partitions(settings: Settings, argv: list[str]) -> None:
    """`dagster asset materialize --partition D` for a day outside the partitions stops here, in
    one line naming the setting; Dagster would print two tracebacks (defs/partitions.py)."""
    if is_run_worker(argv):
        return
    for key in requested_partitions(argv):
        problem = partition_problem(key, settings.partitions_start)
        if problem is not None:
            raise ConfigurationErrorAtLoad(PARTITIONS_START_SETTING, problem)
