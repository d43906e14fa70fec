"""Expected fault detections (SPEC §3), computed from the generated numbers.

This is an oracle for the platform's tests, written from the spec's text and
kept apart from `greenstream_dagster.rules`: per meter and day it evaluates the
stuck-meter, erratic-spike and communication-gap rules on the usable winning
readings, with windows clipped at the generator's first day (the platform must
run with its partitions starting on that day, or earlier days would count as
silent).

It also guards the dataset against borderline cases: a reading within a
quarter σ of the spike limit, a window with no spread, or a missing rate on the
gap limit would let two correct implementations disagree, so the generator
fails instead of writing such data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from greenstream_dagster.generator.config import GeneratorError
from greenstream_dagster.generator.load_profile import SLOTS_PER_DAY
from greenstream_dagster.rules.config import RulesConfig

SPIKE_MARGIN_SIGMAS = 0.25
MIN_WINDOW_STD_KW = 1e-3


@dataclass(frozen=True)
class DayDetections:
    """Meter indices (and slots for spikes) the rules flag on one day."""

    stuck: np.ndarray
    spike_meters: np.ndarray
    spike_slots: np.ndarray
    gap: np.ndarray
    max_normal_z: float  # highest z of a reading that is not a spike, for the report


class Oracle:
    """Streams days in order, keeping per meter-day sums for the 7-day windows."""

    def __init__(self, meters: int, days: int, rules: RulesConfig):
        self.rules = rules
        self.count = np.zeros((meters, days))
        self.total = np.zeros((meters, days))
        self.squares = np.zeros((meters, days))
        self.covered = np.zeros((meters, days))

    def _window(self, day: int) -> slice:
        return slice(max(0, day - self.rules.window_days + 1), day + 1)

    def window_sums_before(self, day: int, meter: int) -> tuple[float, float, float]:
        """(count, sum, sum of squares) of a meter's usable readings on the window's earlier days."""
        return self._sums(slice(self._window(day).start, day), meter)

    def window_mean_std(self, day: int, meter: int) -> tuple[float, float]:
        """Mean and sample σ of a meter's usable readings over the window of a day already added."""
        n, s, q = self._sums(self._window(day), meter)
        mean = s / n
        return float(mean), float(np.sqrt((q - s * mean) / (n - 1)))

    def _sums(self, days: slice, meter: int) -> tuple[float, float, float]:
        return (float(self.count[meter, days].sum()), float(self.total[meter, days].sum()),
                float(self.squares[meter, days].sum()))

    def add_day(self, day: int, usable_kw: np.ndarray, placeable: np.ndarray) -> DayDetections:
        """`usable_kw`: (meters, 96), NaN where no usable reading; `placeable`: slots with a row."""
        rules = self.rules
        usable = ~np.isnan(usable_kw)
        values = np.where(usable, usable_kw, 0.0)
        n = usable.sum(axis=1)
        self.count[:, day] = n
        self.total[:, day] = values.sum(axis=1)
        self.squares[:, day] = (values**2).sum(axis=1)
        self.covered[:, day] = placeable.sum(axis=1)

        # Stuck meter: sample variance of the day below the limit, with enough readings.
        with np.errstate(invalid="ignore", divide="ignore"):
            day_mean = self.total[:, day] / n
            day_var = ((np.where(usable, usable_kw - day_mean[:, None], 0.0)) ** 2).sum(axis=1) / (n - 1)
        stuck = (n >= rules.stuck_min_readings) & (day_var < rules.stuck_variance_kw2)
        evaluated = n >= rules.stuck_min_readings
        near = evaluated & ~stuck & (day_var < 2 * rules.stuck_variance_kw2)
        if near.any():
            raise GeneratorError(f"meter index {np.flatnonzero(near)[0]} has a day variance "
                                 f"close to the stuck limit on day {day}")

        # Erratic spike: above mean + k·σ of the window, the reading itself included.
        window = self._window(day)
        wn = self.count[:, window].sum(axis=1)
        ws = self.total[:, window].sum(axis=1)
        wq = self.squares[:, window].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = ws / wn
            std = np.sqrt(np.maximum(wq - ws * mean, 0.0) / (wn - 1))
            z = (usable_kw - mean[:, None]) / std[:, None]
        checked = wn >= rules.spike_min_readings
        if (checked & (std < MIN_WINDOW_STD_KW)).any():
            raise GeneratorError(f"a meter's window has no spread on day {day}; "
                                 "the spike rule would be decided by rounding")
        z = np.where(checked[:, None] & usable, z, -np.inf)
        spike = z > rules.spike_sigmas
        if (np.abs(z - rules.spike_sigmas) < SPIKE_MARGIN_SIGMAS).any():
            m = np.argwhere(np.abs(z - rules.spike_sigmas) < SPIKE_MARGIN_SIGMAS)[0]
            raise GeneratorError(f"meter index {m[0]} slot {m[1]} on day {day} is within "
                                 f"{SPIKE_MARGIN_SIGMAS}σ of the spike limit")
        spike_meters, spike_slots = np.nonzero(spike)
        normal_z = np.where(spike, -np.inf, z)
        max_normal_z = float(normal_z.max()) if normal_z.size else float("-inf")

        # Communication gap: missing slot share of the window, for meters with a row today.
        days_in_window = window.stop - window.start
        missing_rate = 1.0 - self.covered[:, window].sum(axis=1) / (SLOTS_PER_DAY * days_in_window)
        reporting = self.covered[:, day] > 0
        if (reporting & (np.abs(missing_rate - rules.gap_max_missing_rate) < 1e-9)).any():
            raise GeneratorError(f"a missing rate equals the gap limit on day {day}")
        gap = reporting & (missing_rate > rules.gap_max_missing_rate)

        return DayDetections(
            stuck=np.flatnonzero(stuck),
            spike_meters=spike_meters,
            spike_slots=spike_slots,
            gap=np.flatnonzero(gap),
            max_normal_z=max_normal_z,
        )
