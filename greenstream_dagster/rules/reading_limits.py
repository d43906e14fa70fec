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
from greenstream_dagster.rules.declared_settings import COUNT, check_declared, declared

MIB = 1024**2


@dataclass(frozen=True)
class ReadingLimits:
    max_object_bytes: int = declared("GREENSTREAM_MAX_OBJECT_BYTES", COUNT, 1024 * MIB,
                                     "§1 a larger object after decompression is a dead letter", minimum=1)
    max_line_bytes: int = declared("GREENSTREAM_MAX_LINE_BYTES", COUNT, 1 * MIB, "§1 a longer line is a MALFORMED_ROW", minimum=1)
    max_stored_chars: int = declared("GREENSTREAM_MAX_STORED_CHARS", COUNT, DEFAULT_STORED_CHARS,
                                     "§1 raw lines and reasons are stored cut to this", minimum=1)
    read_budget_bytes: int = declared("GREENSTREAM_READ_BUDGET_BYTES", COUNT, 512 * MIB,
                                      "§1 decompressed bytes the day's reader holds at once", minimum=1)

    def __post_init__(self) -> None:
        check_declared(self)
