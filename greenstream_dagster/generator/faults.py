"""The three meter faults of SPEC §3, written into a day's readings (whole watts).

- **Stuck meter**: the register freezes at its 19:00 reading for the whole day,
  96 identical values (variance 0). Frozen at an evening-peak level, the day
  lies far from the meter's mean, so it widens rather than narrows the spread
  of the windows around it and makes no neighbour reading look like a spike.
- **Erratic spike**: one reading 20–50× the meter's typical load, raised if
  needed until it clears mean + (4 + margin)σ of its 7-day window with itself
  included, and capped at 90 % of max_kw so it stays a usable reading.
- **Communication gap**: the meter sends nothing for `gap_days` whole days;
  whole days keep the windows after the silence free of half-day samples.
- **Silence** (SPEC §3a): the same whole-day silence, from a day after the
  meter was first seen, for `silent_days` days or until the end (a meter that
  never returns), so the meter is silent on each of those days.
"""

from __future__ import annotations

import numpy as np

from greenstream_dagster.generator.config import GeneratorError
from greenstream_dagster.generator.oracle import SPIKE_MARGIN_SIGMAS
from greenstream_dagster.rules.config import RulesConfig

STUCK_SLOT = 76  # 19:00 UTC, inside the evening peak
SPIKE_CAP_SHARE = 0.9


def freeze_day(watts: np.ndarray, meter: int) -> int:
    """Make the meter's day constant; returns the frozen value in watts."""
    watts[meter, :] = watts[meter, STUCK_SLOT]
    return int(watts[meter, STUCK_SLOT])


def spike_watts(day_kw: np.ndarray, slot: int, typical_kw: float, factor: float,
                before: tuple[float, float, float], rules: RulesConfig) -> int:
    """A spike value in watts for `slot` of a meter's day `day_kw` (96 usable kW values).

    `before` holds (count, sum, sum of squares) of the window's earlier days.
    """
    others = np.delete(day_kw, slot)
    count0 = before[0] + len(others)
    sum0 = before[1] + others.sum()
    squares0 = before[2] + (others**2).sum()
    cap = SPIKE_CAP_SHARE * rules.max_kw
    value = min(factor * typical_kw, cap)
    needed = rules.spike_sigmas + 2 * SPIKE_MARGIN_SIGMAS
    while True:
        value_kw = round(value * 1000) / 1000
        n, s, q = count0 + 1, sum0 + value_kw, squares0 + value_kw**2
        mean = s / n
        std = np.sqrt((q - s * mean) / (n - 1))
        if value_kw > mean + needed * std:
            return round(value * 1000)
        if value >= cap:
            raise GeneratorError(f"a spike of {cap} kW does not clear mean + {needed}σ "
                                 "of its window; raise max_kw or lower the meter load")
        value = min(value * 1.25, cap)


def silence(placeable: np.ndarray, meter: int) -> None:
    placeable[meter, :] = False
