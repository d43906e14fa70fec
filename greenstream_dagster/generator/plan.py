"""Which meters, days and slots carry each injection, drawn once from the seed.

Every injection gets meters of its own, so a meter shows exactly one cause and
the manifest can name the outcome of each. Quarantine rows are extra lines and
borrow ids of any meter: they are not placeable and touch no meter's readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from greenstream_dagster.generator.bad_rows import QUARANTINE_CODES, VALIDATION_KINDS
from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.load_profile import SLOTS_PER_DAY, rng_for

STREAM_PLAN = 3


@dataclass(frozen=True)
class Stuck:
    meter: int
    day: int


@dataclass(frozen=True)
class Spike:
    meter: int
    day: int
    slot: int
    factor: float  # multiple of the meter's typical load


@dataclass(frozen=True)
class Gap:
    meter: int
    first_day: int  # silent from this day for config.gap_days whole days


@dataclass(frozen=True)
class Silence:
    meter: int
    first_day: int  # no row at all from this day
    last_day: int | None  # through this day; None: never reports again


@dataclass(frozen=True)
class ShortGap:
    """SPEC §3b: the meter sends nothing for `slots` consecutive slots from `first_slot` on `day`."""

    meter: int
    day: int
    first_slot: int
    slots: int


@dataclass(frozen=True)
class RowInjection:
    """A validation issue, revision or duplicate on one reading (meter, day, slot)."""

    kind: str
    meter: int
    day: int
    slot: int


@dataclass(frozen=True)
class QuarantineInjection:
    code: str
    day: int
    borrowed_meter: int  # whose id the row carries, where the code keeps a valid id


@dataclass
class InjectionPlan:
    stuck: list[Stuck] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    short_gaps: list[ShortGap] = field(default_factory=list)
    validation: list[RowInjection] = field(default_factory=list)
    revisions: list[RowInjection] = field(default_factory=list)
    duplicates: list[RowInjection] = field(default_factory=list)
    quarantine: list[QuarantineInjection] = field(default_factory=list)

    def on_day(self, items: list, day: int) -> list:
        return [item for item in items if item.day == day]

    def dedicated_meters(self) -> set[int]:
        groups = (self.stuck, self.spikes, self.gaps, self.silences, self.short_gaps, self.validation,
                  self.revisions, self.duplicates)
        return {item.meter for group in groups for item in group}


def plan_injections(config: GeneratorConfig) -> InjectionPlan:
    rng = rng_for(config.seed, STREAM_PLAN)
    meters = iter(rng.permutation(config.meters).tolist())
    plan = InjectionPlan()
    for _ in range(config.stuck_meters):
        plan.stuck.append(Stuck(next(meters), int(rng.integers(1, config.days))))
    for _ in range(config.spike_meters):
        plan.spikes.append(Spike(next(meters), int(rng.integers(0, config.days)),
                                 int(rng.integers(0, SLOTS_PER_DAY)), float(rng.uniform(20, 50))))
    for _ in range(config.gap_meters):
        plan.gaps.append(Gap(next(meters), int(rng.integers(0, config.days - config.gap_days))))
    for _ in range(config.silent_meters):
        first = int(rng.integers(1, config.days - config.silent_days))
        plan.silences.append(Silence(next(meters), first, first + config.silent_days - 1))
    for _ in range(config.vanished_meters):
        plan.silences.append(Silence(next(meters), int(rng.integers(1, config.days)), None))
    short_gap_meters = [next(meters) for _ in range(config.short_gap_meters)]
    for day in range(config.days):
        for i, meter in enumerate(short_gap_meters):
            plan.short_gaps.append(_short_gap(meter, day, (i + day) % SHORT_GAP_PLACES, rng))
        for kind in VALIDATION_KINDS:
            for _ in range(config.validation_rows):
                plan.validation.append(_row(kind, next(meters), day, rng))
        for _ in range(config.revisions):
            plan.revisions.append(_row("REVISION", next(meters), day, rng))
        for i in range(config.duplicates):
            # Alternate: a later file re-delivers it, or the same file repeats the line.
            kind = "REDELIVERED" if i % 2 == 0 else "REPEATED_IN_FILE"
            plan.duplicates.append(_row(kind, next(meters), day, rng))
        for code in QUARANTINE_CODES:
            for _ in range(config.quarantine_rows):
                plan.quarantine.append(
                    QuarantineInjection(code, day, int(rng.integers(0, config.meters))))
    return plan


SHORT_GAP_PLACES = 8  # of every 8 meter-days, one run starts the day and one ends it
MAX_SHORT_GAP_SLOTS = 8


def _short_gap(meter: int, day: int, place: int, rng: np.random.Generator) -> ShortGap:
    """1–8 slots; the run opens the day (place 0), closes it (1) or lies inside it, with a slot either side."""
    slots = int(rng.integers(1, MAX_SHORT_GAP_SLOTS + 1))
    first = {0: 0, 1: SLOTS_PER_DAY - slots}.get(place)
    if first is None:
        first = int(rng.integers(1, SLOTS_PER_DAY - slots))
    return ShortGap(meter, day, first, slots)


def _row(kind: str, meter: int, day: int, rng: np.random.Generator) -> RowInjection:
    return RowInjection(kind, meter, day, int(rng.integers(0, SLOTS_PER_DAY)))
