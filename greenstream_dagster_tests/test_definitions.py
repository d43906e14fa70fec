"""SPEC §6, §8: the code location loads, validates and carries the contract's names."""

import os
import subprocess
import sys

import dagster as dg

from greenstream_dagster.definitions import build_definitions, defs
from greenstream_dagster.settings import load_settings

ASSETS = {"raw_readings", "standardized_readings", "scored_readings", "meter_readings", "lake_readings", "lake_meter_daily"}


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


def test_contract_names():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == ASSETS
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    for name in ("stuck_meters", "erratic_spikes", "communication_gaps", "scored_schema"):
        assert ("scored_readings", name) in checks
    assert ("standardized_readings", "standardized_schema") in checks
    assert defs.get_sensor_def("raw_file_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.get_schedule_def("lake_rollup_schedule").cron_schedule == "0 2 * * *"
    assert defs.get_schedule_def("retention_schedule") is not None


def test_assets_are_daily_partitioned_and_scored_reads_the_seven_day_window():
    graph = defs.resolve_asset_graph()
    for name in ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.partitions_def.start.date().isoformat() == "2024-01-01"
        assert node.backfill_policy == dg.BackfillPolicy.multi_run(1)
    scored = graph.get(dg.AssetKey("scored_readings"))
    mapping = scored.partition_mappings[dg.AssetKey("standardized_readings")]
    assert (mapping.start_offset, mapping.end_offset) == (-6, 0)


def test_partitions_start_and_window_come_from_the_environment():
    settings = load_settings({"GREENSTREAM_PARTITIONS_START": "2025-03-01"})
    graph = build_definitions(settings).resolve_asset_graph()
    assert graph.get(dg.AssetKey("raw_readings")).partitions_def.start.date().isoformat() == "2025-03-01"


def test_dagster_cli_validates_and_bad_configuration_names_the_setting(tmp_path):
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "greenstream_dagster.definitions"]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # an ephemeral instance, not the repo's dagster.yaml
    ok = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                         env={**env, "GREENSTREAM_TIMEZONE": "Mars/Olympus"})
    assert bad.returncode != 0
    assert "GREENSTREAM_TIMEZONE" in bad.stdout + bad.stderr
