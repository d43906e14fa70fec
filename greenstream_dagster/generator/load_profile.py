"""Household load model: 96 quarter-hour readings in kW per meter and day.

A reading is ``scale × shape(slot, weekday) × day_factor × (1 + noise)``:

- **shape**: a night base, a morning bump (about 07:30 on weekdays, later and
  broader at weekends), a daytime plateau (higher at weekends) and an evening
  peak that fills 17:00–21:00 with soft edges. Each meter shifts its morning
  and evening by up to ±45 minutes and weights the parts differently. Each
  shape is normalised to a mean of 1 (weekends 1.04), so weekends move load in
  time rather than in level.
- **scale**: the meter's mean load, log-normal around 0.9 kW, clipped to
  0.5–3 kW. The floor keeps every day's sample variance (≥ 0.03 kW²) far above
  the stuck-meter limit of 0.01 kW² (SPEC §3).
- **day_factor**: 0.94–1.06 per meter and day (weather, occupancy).
- **noise**: uniform white noise smoothed by a 4-slot moving average, so it is
  bounded by ±``noise_amplitude`` (at most 12 %) and has no isolated jumps.

Bounded noise on a broad evening peak keeps every normal reading well below
mean + 4σ of any window of 1–7 days: a peak covering a sixth of the day sits
about 2–3σ above the mean (measured maximum 3.2σ over 20,000 meters × 14 days),
so normal meters never look like spikes. Readings stay within about 0.1–10 kW,
inside the physical range 0–100 kW.

Everything is vectorised over meters; randomness comes from generators seeded
by (seed, purpose, day), so a day can be produced without the days before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

SLOTS_PER_DAY = 96
UNITS = ("W", "kW", "MW")
# Share of meters reporting in each unit; watts dominate, megawatts are rare.
UNIT_SHARES = (0.80, 0.17, 0.03)

# Weekend days use about as much energy as weekdays, spread over the day.
WEEKEND_LEVEL = 1.04

# Purposes of the random streams, so adding one never shifts another.
STREAM_FLEET = 1
STREAM_DAY = 2


def rng_for(seed: int, *purpose: int) -> np.random.Generator:
    """A generator for one purpose (and day, file …), independent of the others."""
    return np.random.default_rng([seed, *purpose])


@dataclass(frozen=True)
class Fleet:
    """The meters: ids (sorted), reporting unit and load parameters, index-aligned."""

    meter_ids: np.ndarray  # str, "SM-<digits>"
    unit_codes: np.ndarray  # int8 index into UNITS
    scale_kw: np.ndarray
    night_level: np.ndarray
    morning_amp: np.ndarray
    day_level: np.ndarray
    evening_amp: np.ndarray
    shift_h: np.ndarray
    weekend_day_boost: np.ndarray
    noise_amplitude: np.ndarray

    @property
    def size(self) -> int:
        return len(self.meter_ids)


def build_fleet(meters: int, seed: int) -> Fleet:
    """Draw `meters` distinct meter ids and their load parameters."""
    rng = rng_for(seed, STREAM_FLEET)
    numbers = np.unique(rng.integers(10_000, 100_000_000, size=meters * 2 + 16))
    numbers = np.sort(rng.choice(numbers, size=meters, replace=False))
    ids = np.char.add("SM-", numbers.astype(str))
    return Fleet(
        meter_ids=ids,
        unit_codes=rng.choice(len(UNITS), size=meters, p=UNIT_SHARES).astype(np.int8),
        scale_kw=np.clip(rng.lognormal(np.log(0.9), 0.45, meters), 0.5, 3.0),
        night_level=rng.uniform(0.25, 0.45, meters),
        morning_amp=rng.uniform(0.4, 1.0, meters),
        day_level=rng.uniform(0.3, 0.7, meters),
        evening_amp=rng.uniform(1.0, 1.8, meters),
        shift_h=rng.uniform(-0.75, 0.75, meters),
        weekend_day_boost=rng.uniform(1.2, 1.6, meters),
        noise_amplitude=rng.uniform(0.05, 0.12, meters),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _bump(hours: np.ndarray, centre: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hours - centre[:, None]) / width) ** 2)


def _window(hours: np.ndarray, start: np.ndarray, end: np.ndarray, softness: float) -> np.ndarray:
    return _sigmoid((hours - start[:, None]) / softness) * _sigmoid((end[:, None] - hours) / softness)


def _shape(fleet: Fleet, weekend: bool) -> np.ndarray:
    """(meters, 96) relative load; not yet normalised."""
    hours = (np.arange(SLOTS_PER_DAY) + 0.5) / 4.0
    shift = fleet.shift_h
    morning_centre = 7.5 + shift + (1.75 if weekend else 0.0)
    morning_width = 1.6 if weekend else 1.0
    day_level = fleet.day_level * (fleet.weekend_day_boost if weekend else 1.0)
    evening_amp = fleet.evening_amp * (0.9 if weekend else 1.0)
    return (
        fleet.night_level[:, None]
        + fleet.morning_amp[:, None] * _bump(hours, morning_centre, morning_width)
        + day_level[:, None] * _window(hours, 9.0 + shift, 16.5 + shift, 0.6)
        + evening_amp[:, None] * _window(hours, 17.0 + shift, 21.0 + shift, 0.45)
    )


def day_shapes(fleet: Fleet) -> tuple[np.ndarray, np.ndarray]:
    """(weekday, weekend) shapes of every meter, each normalised to its level."""
    # Each shape has its own mean so weekends move load in time, not in level:
    # a level jump between days would widen the spread of a 7-day window unevenly.
    weekday, weekend = _shape(fleet, weekend=False), _shape(fleet, weekend=True)
    weekday /= weekday.mean(axis=1, keepdims=True)
    weekend *= WEEKEND_LEVEL / weekend.mean(axis=1, keepdims=True)
    return weekday, weekend


def day_load_kw(fleet: Fleet, seed: int, day_index: int, day: date,
                shapes: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The (meters, 96) load in kW of one UTC day, slot 0 starting at 00:00.

    `shapes` is `day_shapes(fleet)`, passed in to compute it once per fleet.
    """
    weekday, weekend = shapes if shapes is not None else day_shapes(fleet)
    shape = weekend if day.weekday() >= 5 else weekday
    rng = rng_for(seed, STREAM_DAY, day_index)
    day_factor = rng.uniform(0.94, 1.06, fleet.size)
    white = rng.uniform(-1.0, 1.0, (fleet.size, SLOTS_PER_DAY + 3))
    smooth = (white[:, :-3] + white[:, 1:-2] + white[:, 2:-1] + white[:, 3:]) / 4.0
    noise = 1.0 + fleet.noise_amplitude[:, None] * smooth
    return (fleet.scale_kw * day_factor)[:, None] * shape * noise
