"""An empty day: what every stage yields for a partition day with no landing rows (SPEC §6).

Every partition can be materialized, and a day without landing files is an
empty day — no readings, checks pass on zero meters. Rather than hand-writing
an empty frame per contract, the empty day is the rules applied to zero rows,
so its frames always have exactly the schemas the real stages produce.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import polars as pl

from greenstream_dagster.asset_names import RAW, SCORED, STANDARDIZED
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.schemas import RAW_ROW_COLUMNS, empty_frame
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster.rules.standardize import standardize


@cache
def empty_day_frames(day: date) -> dict[tuple[str, str], pl.DataFrame]:
    """(stage, frame name) → the zero-row frame that stage stages for `day`."""
    config = RulesConfig(partitions_start=day)  # thresholds do not shape zero rows
    rows = empty_frame(RAW_ROW_COLUMNS)
    standardized = standardize(rows, day, config)
    scored = score_partition(standardized.readings, day, config)
    return {
        (RAW, "rows"): rows,
        (STANDARDIZED, "readings"): standardized.readings,
        (STANDARDIZED, "rejected"): standardized.rejected,
        (STANDARDIZED, "revisions"): standardized.revisions,
        (STANDARDIZED, "meter_stats"): standardized.meter_stats,
        (SCORED, "readings"): scored.readings,
        (SCORED, "meters"): scored.meters,
        (SCORED, "estimates"): scored.estimates,
    }
