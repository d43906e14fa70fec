"""The removal guard: a re-load never removes stored readings silently (SPEC §5).

When a day is processed again, every landing object whose rows were loaded
the last time must still be there. If some are gone (deleted, expired by a
lifecycle rule), re-processing would delete their readings from the stores;
the run stops and names them, unless it was explicitly told to accept the
removal. Dead-lettered objects loaded no rows, so their absence removes
nothing and is not guarded.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from greenstream_dagster.rules.bounded_text import for_log

ACCEPT_REMOVAL_TAG = "greenstream/accept_removed_objects"
_NAMED = 10  # keys named in the message; the count says how many more


def removed_objects(previous_files: pl.DataFrame | None, current_keys: Iterable[str]) -> list[str]:
    """Keys read successfully by the day's previous raw load that the landing zone no longer has."""
    if previous_files is None or previous_files.height == 0:
        return []
    loaded = previous_files.filter(pl.col("dead_letter_reason").is_null())["key"].to_list()
    present = set(current_keys)
    return sorted(key for key in loaded if key not in present)


def removal_message(day: str, removed: list[str]) -> str:
    """What stopped the run and what to do about it, with a bounded list of keys."""
    named = ", ".join(for_log(key, 300) for key in removed[:_NAMED])
    more = f" and {len(removed) - _NAMED} more" if len(removed) > _NAMED else ""
    return (
        f"{len(removed)} landing object(s) loaded before for {day} are gone: {named}{more}. "
        f"Re-processing {day} would delete their readings. Restore the objects, or re-run with "
        f"run config accept_removed_objects: true on raw_readings (or the run tag "
        f"{ACCEPT_REMOVAL_TAG}=true) to accept the removal; removed readings are then counted and "
        "kept in removed_readings."
    )

