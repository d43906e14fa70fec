"""The 7-day window of partition day D (SPEC §3): days D-6..D, clipped at the partitions' start.

Its length counts calendar days, with or without data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from greenstream_dagster.rules.config import RulesConfig

SLOTS_PER_DAY = 96  # 15-minute intervals of a UTC day


@dataclass(frozen=True)
class FaultWindow:
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def slots(self) -> int:
        return SLOTS_PER_DAY * self.days


def fault_window(partition_date: date, config: RulesConfig) -> FaultWindow:
    first = max(partition_date - timedelta(days=config.window_days - 1), config.partitions_start)
    return FaultWindow(first_day=min(first, partition_date), last_day=partition_date)
