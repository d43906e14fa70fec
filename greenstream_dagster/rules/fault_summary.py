"""How many meters of a partition day each fault rule hit, and the worst of them (SPEC §6 checks).

The asset checks report these as metadata and WARN when a fault's share of
meters exceeds its configured limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

WORST_METERS = 10

# fault → (flag over METER_FAULT_COLUMNS, the column ranking the worst meters, descending?)
FAULTS = {
    "stuck_meters": (pl.col("stuck"), "variance_kw2", False),
    "erratic_spikes": (pl.col("spike_count") > 0, "spike_count", True),
    "communication_gaps": (pl.col("gap"), "missing_rate_7d", True),
}


@dataclass(frozen=True)
class FaultSummary:
    fault: str
    meters: int
    affected: int
    worst_meter_ids: list[str]

    @property
    def share(self) -> float:
        return self.affected / self.meters if self.meters else 0.0

    def exceeds(self, limit: float) -> bool:
        return self.share > limit


def summarize_fault(meters: pl.DataFrame, fault: str) -> FaultSummary:
    flag, rank_by, descending = FAULTS[fault]
    hit = meters.filter(flag)
    worst = hit.sort([rank_by, "meter_id"], descending=[descending, False]).head(WORST_METERS)
    return FaultSummary(
        fault=fault, meters=meters.height, affected=hit.height, worst_meter_ids=worst["meter_id"].to_list()
    )
