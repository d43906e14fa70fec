"""Per-partition asset checks on scored_readings: stuck_meters, erratic_spikes, communication_gaps (SPEC §6).

Declared with `partitions_def`, so the UI keeps a result for every day. Each
reports counts, the share of meters hit and the worst meter ids, and WARNs
when the share exceeds the configured limit.
"""

from __future__ import annotations

import dagster as dg

from greenstream_dagster.asset_names import SCORED
from greenstream_dagster.defs.policies import retry_storage_faults, with_its_asset
from greenstream_dagster.defs.readings.assets import partition_day
from greenstream_dagster.defs.resources import RulesResource, S3Resource
from greenstream_dagster.rules.fault_summary import FAULTS, summarize_fault
from greenstream_dagster.storage import staging

_DESCRIPTIONS = {
    "stuck_meters": "Meters whose usable readings of the day have a sample variance below the stuck threshold.",
    "erratic_spikes": "Meters with a reading above mean + k·σ of their 7-day window.",
    "communication_gaps": "Meters missing more than the allowed share of their 7-day window's 15-minute slots.",
}


def build_fault_checks(partitions: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    return [_fault_check(fault, partitions) for fault in FAULTS]


def _fault_check(fault: str, partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=SCORED, name=fault, partitions_def=partitions, description=_DESCRIPTIONS[fault],
                    automation_condition=with_its_asset())
    def check(context, s3: S3Resource, rules: RulesResource) -> dg.AssetCheckResult:
        day = partition_day(context)
        with retry_storage_faults(context):
            meters = staging.read_frame(s3.client(), s3.bucket, SCORED, day, "meters")
        if meters is None:
            return dg.AssetCheckResult(passed=False, description=f"scored_readings {day} has no meter statistics yet")
        summary = summarize_fault(meters, fault)
        warn = summary.exceeds(rules.check_warn_share)
        return dg.AssetCheckResult(
            passed=not warn,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{summary.affected} of {summary.meters} meters ({summary.share:.2%}); "
            f"limit {rules.check_warn_share:.2%}",
            metadata={
                "affected_meters": summary.affected,
                "meters": summary.meters,
                "share": round(summary.share, 6),
                "warn_share": rules.check_warn_share,
                "worst_meter_ids": ", ".join(summary.worst_meter_ids) or "none",
            },
        )

    return check
