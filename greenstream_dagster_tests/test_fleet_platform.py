"""The fleet end to end (SPEC §3a) on the real embedded S3 and PostgreSQL: the generator's silent
meters injected at known days → the registry `meters`, the `silent_meters` rows, the per-partition
check and the fleet metadata exactly as its manifest says; a returning meter; a backlog that
fills a silent day clears it; re-runs change nothing.

Expectations come from the generator's manifest (its own presence oracle), not from the platform.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.journey.meter_story import meter_facts, render_meter
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import lake
from greenstream_dagster.storage.fleet_lake import read_registry_snapshot
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster.upload_command import upload_folder

TODAY = datetime.now(timezone.utc).date()
DAYS = [TODAY - timedelta(days=6 - k) for k in range(6)]
WARN_SHARE = 0.03  # 120 meters: WARN from 4 silent meters of the known fleet


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    config = with_preset(GeneratorConfig(
        out=tmp_path_factory.mktemp("fleet") / "sample", meters=120, days=len(DAYS), start=DAYS[0], seed=5,
        silent_meters=3, vanished_meters=1, rules=RulesConfig(partitions_start=DAYS[0])), "default")
    return generate(config), config.out


class Fleet:
    def __init__(self, bucket: str, database_url: str, instance):
        self.bucket, self.database_url, self.instance = bucket, database_url, instance
        self.defs = build_definitions(load_settings())

    def run(self, day: date) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def("ingest_partition_job").execute_in_process(
            partition_key=day.isoformat(), instance=self.instance)
        assert result.success
        return result

    def query(self, sql: str, *params):
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    def silent_rows(self, day: date) -> list[tuple[str, str, int]]:
        return [(m, s.isoformat(), n) for m, s, n in self.query(
            "SELECT meter_id, last_seen, silent_days FROM silent_meters WHERE partition_date = %s "
            "ORDER BY silent_days DESC, meter_id", day)]


@pytest.fixture
def fleet(point_platform, s3_env, database_url, monkeypatch, tmp_path, sample, s3_client):
    point_platform(DAYS[0])
    monkeypatch.setenv("GREENSTREAM_SILENT_WARN_SHARE", str(WARN_SHARE))
    upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], sample[1] / "raw-data")
    with dg.instance_for_test() as instance:
        yield Fleet(s3_env["GREENSTREAM_BUCKET"], database_url, instance)


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def silent_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "silent_meters"]
    return evaluation


def expected_silent(expected) -> list[tuple[str, str, int]]:
    return [(s.meter_id, s.last_seen, s.silent_days) for s in expected.silent_meters]


def expected_registry(manifest) -> dict[str, tuple]:
    """Every meter reports on every day but those the manifest lists as silent for it."""
    quiet = {f.meter_id: set(f.silent_dates) for f in manifest.faults.gaps + manifest.faults.silences}
    ids = {m for e in manifest.expected for m in e.new_meters}
    registry = {}
    for meter in ids:
        days = [d for d in manifest.days if d not in quiet.get(meter, set())]
        registry[meter] = (days[0], days[-1], len(days),
                           datetime.combine(date.fromisoformat(days[-1]), time(23, 45), timezone.utc))
    return registry


def test_registry_silent_rows_check_and_fleet_numbers_match_the_manifest(fleet, sample, s3_client):
    manifest, _ = sample
    assert any(e.silent_meters for e in manifest.expected) and any(e.returning_meters for e in manifest.expected)
    results = {day: fleet.run(day) for day in DAYS}

    for expected in manifest.expected:
        day = date.fromisoformat(expected.date)
        assert fleet.silent_rows(day) == expected_silent(expected), day
        lake_day = lake.read_lake_day(s3_client, fleet.bucket, "silent_meters", day)
        assert sorted(lake_day.select("meter_id", "silent_days").rows()) == sorted(
            (s.meter_id, s.silent_days) for s in expected.silent_meters)

        numbers = materialization(results[day], "silent_meters")
        assert numbers["fleet_size"] == expected.known_fleet
        assert numbers["silent_meters"] == len(expected.silent_meters)
        assert numbers["returning_meters"] == len(expected.returning_meters)
        assert numbers["new_meters"] == len(expected.new_meters)

        check = silent_check(results[day])
        assert check.partition == expected.date
        share = len(expected.silent_meters) / expected.known_fleet if expected.known_fleet else 0.0
        assert check.passed == (share <= WARN_SHARE), day
        assert check.severity == dg.AssetCheckSeverity.WARN
        longest = check.metadata["longest_silent_meter_ids"].value
        for s in expected.silent_meters[:3]:
            assert s.meter_id in longest

    assert any(not silent_check(r).passed for r in results.values())
    assert any(silent_check(r).passed for r in results.values())

    registry = {m: (f.isoformat(), last.isoformat(), n, ts) for m, f, last, n, ts in fleet.query(
        "SELECT meter_id, first_seen, last_seen, days_seen, last_reading_ts FROM meters")}
    assert registry == expected_registry(manifest)
    snapshot = read_registry_snapshot(s3_client, fleet.bucket)
    assert snapshot.height == len(registry)

    # A returning meter is no longer silent from its return day.
    back = next(f for f in manifest.faults.silences if f.returns_on)
    returned = date.fromisoformat(back.returns_on)
    assert back.meter_id not in {m for m, _, _ in fleet.silent_rows(returned)}
    assert back.meter_id in {m for m, _, _ in fleet.silent_rows(returned - timedelta(days=1))}
    # The one that never returns is silent on every later day.
    gone = next(f for f in manifest.faults.silences if f.returns_on is None)
    for d in gone.silent_dates:
        assert gone.meter_id in {m for m, _, _ in fleet.silent_rows(date.fromisoformat(d))}

    # A day without landing files materializes, with every meter of the look-back silent.
    empty = fleet.run(TODAY)
    assert materialization(empty, "silent_meters")["reporting_meters"] == 0
    assert sorted(fleet.silent_rows(TODAY)) == sorted(
        (m, last, (TODAY - date.fromisoformat(last)).days) for m, (_, last, _, _) in registry.items())
    assert not silent_check(empty).passed

    # `greenstream journey --meter M`: the registry entry and the silent days.
    facts = meter_facts(fleet.database_url, gone.meter_id)
    assert (facts["first_seen"], facts["last_seen"]) == expected_registry(manifest)[gone.meter_id][:2]
    assert sorted(s["date"] for s in facts["silent_days"]) == [*gone.silent_dates, TODAY.isoformat()]
    assert "silent" in render_meter(facts)

    # Re-running a day changes nothing.
    again = fleet.run(DAYS[3])
    assert materialization(again, "silent_meters")["rows_changed"] == 0
    registry_numbers = materialization(again, "meter_registry")
    assert (registry_numbers["presence_rows_changed"], registry_numbers["registry_rows_changed"]) == (0, 0)


def test_a_backlog_that_fills_a_silent_day_clears_it_and_cascades_to_the_later_days(fleet, sample, s3_client):
    manifest, _ = sample
    for day in DAYS:
        fleet.run(day)
    baseline = dg.evaluate_automation_conditions(defs=fleet.defs, instance=fleet.instance)
    assert baseline.total_requested == 0  # every day is materialized and up to date
    back = next(f for f in manifest.faults.silences if f.returns_on)
    filled = date.fromisoformat(back.silent_dates[0])
    later = [d for d in DAYS if d > filled]
    before = {d: fleet.silent_rows(d) for d in later}
    (days_seen,) = fleet.query("SELECT days_seen FROM meters WHERE meter_id = %s", back.meter_id)[0]

    put_object(s3_client, fleet.bucket, f"raw-data/{filled}/backlog/late-{back.meter_id}.csv",
               f"meter_id,timestamp,value,unit\n{back.meter_id},{filled}T06:00:00Z,1500,W\n".encode())
    fleet.run(filled)  # what the sensor requests for the new object
    assert back.meter_id not in {m for m, _, _ in fleet.silent_rows(filled)}

    # The fleet's automation condition asks for exactly the later days whose look-back holds the day.
    cascade = dg.evaluate_automation_conditions(defs=fleet.defs, instance=fleet.instance, cursor=baseline.cursor)
    requested = cascade.get_requested_partitions(dg.AssetKey("silent_meters"))
    assert requested == {d.isoformat() for d in later}
    assert cascade.get_requested_partitions(dg.AssetKey("meter_registry")) == set()
    job = fleet.defs.resolve_implicit_global_asset_job_def()
    for key in sorted(requested):
        assert job.execute_in_process(partition_key=key, instance=fleet.instance,
                                      asset_selection=[dg.AssetKey("silent_meters")]).success

    next_day = filled + timedelta(days=1)
    if back.silent_dates[1:]:
        assert (back.meter_id, filled.isoformat(), 1) in fleet.silent_rows(next_day)
    assert fleet.query("SELECT days_seen FROM meters WHERE meter_id = %s", back.meter_id)[0][0] == days_seen + 1
    # Other meters' rows of the later days are untouched.
    for d in later:
        assert [r for r in fleet.silent_rows(d) if r[0] != back.meter_id] == [
            r for r in before[d] if r[0] != back.meter_id]
