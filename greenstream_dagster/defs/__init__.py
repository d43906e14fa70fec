"""Dagster wiring: assets, checks, sensor, schedules and resources, assembled by `definitions`.

Importing this package silences Dagster's Beta/Preview warnings for the features
we use on purpose — and only those, by message. Every process that loads the
code location (code server, run worker, step subprocess, `dagster asset
materialize`) imports it before any asset is declared, and each declaration
warns again in each process: unfiltered, `greenstream dev` printed about 1,500
such lines in three minutes and hid what mattered. A feature not listed here
still warns.
"""

import re
import warnings

import dagster as dg

# (category, message start): each a choice written down where it is made.
CHOSEN_FEATURES = (
    # policies.py: one partition per run, so the per-partition check results are kept.
    (dg.BetaWarning, "Parameter `backfill_policy` of function `asset`"),
    # reading_assets.py: the fault window reads the days that exist (clipped at the partitions' start).
    (dg.BetaWarning, "Parameter `allow_nonexistent_upstream_partitions` of initializer `TimeWindowPartitionMapping"),
    # fault_checks.py, reading_assets.py: a check result per partition day in the UI.
    (dg.PreviewWarning, "Specifying a partitions_def on an AssetCheckSpec"),
    # landing_freshness.py: the landing zone is observed, not materialized (its freshness is arrivals).
    (dg.BetaWarning, "Function `observable_source_asset`"),
    # landing_freshness.py: a last-update check on that observed source, re-evaluated by its sensor.
    (dg.SupersessionWarning, "Function `build_last_update_freshness_checks`"),
    (dg.SupersessionWarning, "Function `build_sensor_for_freshness_checks`"),
)

for category, message in CHOSEN_FEATURES:
    warnings.filterwarnings("ignore", message=re.escape(message), category=category)
