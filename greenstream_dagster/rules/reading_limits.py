"""How much of a landing file the platform will read and keep (SPEC §1 limits).

Each limit is a setting (README, Configuration) with the default given here:
- `max_object_bytes`: an object larger than this after decompression is a dead
  letter; decompression stops as soon as the limit is passed, so a gzip bomb
  costs at most this much, never its expanded size.
- `max_line_bytes`: a physical line longer than this (line ending excluded) is a
  `MALFORMED_ROW`; a quoted record spanning several lines may not exceed it either.
- `max_stored_chars`: raw lines, dead-letter reasons and keys are stored and
  logged cut to this many characters, with a visible marker.
- `read_budget_bytes`: decompressed bytes the day's reader holds at once across
  its worker threads; a file larger than the budget is read alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenstream_dagster.rules.bounded_text import DEFAULT_STORED_CHARS

MIB = 1024**2


@dataclass(frozen=True)
class ReadingLimits:
    max_object_bytes: int = 1024 * MIB
    max_line_bytes: int = 1 * MIB
    max_stored_chars: int = DEFAULT_STORED_CHARS
    read_budget_bytes: int = 512 * MIB

    def __post_init__(self) -> None:
        for name in ("max_object_bytes", "max_line_bytes", "max_stored_chars", "read_budget_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
