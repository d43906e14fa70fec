"""Which keys are partition days: the UTC days from GREENSTREAM_PARTITIONS_START to today (SPEC §6).

A day outside them (before the start, after today, or no day at all) is refused
in one line that names the setting and its value, at every entry point:
`dagster asset materialize --partition` at load (defs/code_location_start.py), a
run of any launcher in its first step (defs/partitions.py), the `greenstream
journey` command. Dagster's own refusal is two tracebacks ending in
DagsterUnknownPartitionError, which never name the setting.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

PARTITIONS_START_SETTING = "GREENSTREAM_PARTITIONS_START"


def partition_problem(key: str, start: date, today: date | None = None) -> str | None:
    """Why `key` is not one of the partitions from `start` to today (None: it is one)."""
    today = today or datetime.now(timezone.utc).date()
    named = f"{PARTITIONS_START_SETTING}={start.isoformat()}"
    try:
        day = date.fromisoformat(key) if len(key) == 10 else None
    except ValueError:
        day = None
    if day is None:
        return f"partition {key[:40]!r} is not a day YYYY-MM-DD; the partitions are the UTC days from {named} to today"
    if day < start:
        return (f"partition {key} is before the partitions' start {named}; "
                f"set {PARTITIONS_START_SETTING} to {key} or earlier to process it")
    if day > today:
        return f"partition {key} is after today ({today.isoformat()} UTC); the partitions run from {named} to today"
    return None


def requested_partitions(argv: list[str]) -> list[str]:
    """The partition keys a `dagster asset materialize` command line asks for."""
    keys = []
    for flag, value in zip(argv, argv[1:]):
        if flag == "--partition":
            keys.append(value)
        elif flag == "--partition-range":
            keys.extend(value.split("...", 1))
    for arg in argv:
        if arg.startswith("--partition="):
            keys.append(arg.split("=", 1)[1])
        elif arg.startswith("--partition-range="):
            keys.extend(arg.split("=", 1)[1].split("...", 1))
    return keys
