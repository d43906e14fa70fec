"""Expected silent, new and returning meters (SPEC §3a), from the generated presence matrix.

Written from the spec's text with numpy and kept apart from
`greenstream_dagster.rules`: a meter is silent on day d when it has a row on
one of the days d-L..d-1 (clipped at the first generated day) and none on d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FleetExpectation:
    silent: list[tuple[int, int, int]]  # (meter index, last seen day index, silent days)
    known_fleet: int
    new: list[int]
    returning: list[int]


def expect_fleet(present: np.ndarray, day: int, lookback_days: int) -> FleetExpectation:
    """`present`: (meters, days) booleans, a meter with at least one placeable row that day."""
    first = max(0, day - lookback_days)
    window = present[:, first:day]
    seen = window.any(axis=1)
    # Index of the last True in each row of the window (meaningless where nothing was seen).
    last = first + window.shape[1] - 1 - np.argmax(window[:, ::-1], axis=1) if window.shape[1] else None
    today = present[:, day]
    silent = np.flatnonzero(seen & ~today)
    rows = sorted(((int(m), int(last[m]), day - int(last[m])) for m in silent), key=lambda r: (-r[2], r[0]))
    ever_before = present[:, :day].any(axis=1)
    returning = np.flatnonzero(today & seen & ~present[:, day - 1]) if day >= 1 else np.array([], dtype=int)
    return FleetExpectation(
        silent=rows,
        known_fleet=int(seen.sum()),
        new=np.flatnonzero(today & ~ever_before).tolist(),
        returning=returning.tolist(),
    )
