"""SPEC §6, §8: the code location loads, validates and carries the contract's names."""

import os
import subprocess
import sys

import dagster as dg

from greenstream_dagster.definitions import build_definitions, defs
from greenstream_dagster.settings import load_settings

ASSETS = {"raw_readings", "standardized_readings", "scored_readings", "meter_readings", "lake_readings", "lake_meter_daily"}
FLEET_ASSETS = {"meter_registry", "silent_meters"}  # SPEC §3a, daily like the contract's
SOURCE_ASSETS = {"landing_zone"}  # observed, not materialized


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


def test_contract_names():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == ASSETS | FLEET_ASSETS | SOURCE_ASSETS
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    for name in ("stuck_meters", "erratic_spikes", "communication_gaps", "scored_schema"):
        assert ("scored_readings", name) in checks
    assert ("standardized_readings", "standardized_schema") in checks
    assert defs.get_sensor_def("raw_file_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.get_schedule_def("lake_rollup_schedule").cron_schedule == "0 2 * * *"
    assert defs.get_schedule_def("retention_schedule") is not None


def test_assets_are_daily_partitioned_and_scored_reads_the_seven_day_window():
    graph = defs.resolve_asset_graph()
    for name in ASSETS | FLEET_ASSETS:
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


def test_fleet_silent_meters_read_the_registry_look_back_and_carry_their_checks(monkeypatch):
    monkeypatch.setenv("GREENSTREAM_SILENT_LOOKBACK_DAYS", "14")
    monkeypatch.setenv("GREENSTREAM_FRESHNESS_HOURS", "0.5")
    graph = build_definitions(load_settings()).resolve_asset_graph()
    mapping = graph.get(dg.AssetKey("silent_meters")).partition_mappings[dg.AssetKey("meter_registry")]
    assert (mapping.start_offset, mapping.end_offset) == (-14, 0)
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert {("silent_meters", "silent_meters"), ("landing_zone", "freshness_check")} <= checks
    spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey("landing_zone"), "freshness_check"))
    assert spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"] == 1800


def test_loading_the_code_location_freezes_what_it_loaded(tmp_path):
    """A run process's hundreds of thousands of long-lived objects (Dagster, botocore, these
    definitions) are kept out of the cyclic collector's scans, during the run and at exit."""
    probe = "import gc, greenstream_dagster.definitions; print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 100_000
