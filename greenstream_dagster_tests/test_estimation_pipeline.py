"""Estimation of short gaps end to end (SPEC §3b) on the real embedded S3 and PostgreSQL.

Generated files with short-gap meters are uploaded and ingested by the sensor's runs. The
expected estimates are worked out here from the generator's manifest (which slots are
missing) and the CSV rows around them, with plain Python decimal arithmetic, never by
the rule itself.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import dagster as dg
import pytest

from greenstream_dagster import cli
from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage import lake
from greenstream_dagster.storage.landing import put_object
from greenstream_dagster.upload_command import upload_folder
from greenstream_dagster_tests.test_pipeline_end_to_end import Platform, check_results

TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(days=2)
DAYS = [START, START + timedelta(days=1)]
UNIT_KW = {"W": Decimal("0.001"), "kW": Decimal(1), "MW": Decimal(1000)}
MAX_SLOTS = 4  # the spec's default


def utc(text: str) -> datetime:
    """A CSV timestamp as its UTC instant, the fraction truncated (SPEC §2)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).replace(microsecond=0)


@pytest.fixture
def sample(tmp_path):
    """60 meters over two days, 16 of them missing a run of 1–8 slots each day."""
    config = GeneratorConfig(out=tmp_path / "sample", meters=60, days=len(DAYS), start=START, seed=5,
                             meters_per_file=25, short_gap_meters=16, rules=RulesConfig(partitions_start=START))
    return generate(config), config.out


def csv_readings(folder, manifest) -> dict[tuple[str, datetime], Decimal]:
    """(meter_id, UTC instant) → kW of every CSV row the generator wrote, read as plain text."""
    values = {}
    for entry in manifest.files:
        with open(folder / entry.key, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                values[(row["meter_id"], utc(row["timestamp"]))] = Decimal(row["value"]) * UNIT_KW[row["unit"]]
    return values


def interpolated(a: Decimal, b: Decimal, n: int) -> list[float]:
    """The n slots between readings a and b one slot either side: a + (b − a) × k / (n + 1), half to even."""
    values = []
    for k in range(1, n + 1):
        exact = Fraction(a) + (Fraction(b) - Fraction(a)) * Fraction(k, n + 1)
        decimal = Decimal(exact.numerator) / Decimal(exact.denominator)
        values.append(float(decimal.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)))
    return values


def expected_estimates(manifest, readings) -> dict[tuple[str, datetime], float]:
    """Every run of at most MAX_SLOTS slots not touching the day's edge, interpolated between the
    readings of the slots either side."""
    expected = {}
    for gap in manifest.faults.short_gaps:
        missing = [utc(t) for t in gap.missing]
        midnight = datetime.fromisoformat(gap.date).replace(tzinfo=timezone.utc)
        before, after = missing[0] - timedelta(minutes=15), missing[-1] + timedelta(minutes=15)
        if len(missing) > MAX_SLOTS or before < midnight or after >= midnight + timedelta(days=1):
            continue
        values = interpolated(readings[(gap.meter_id, before)], readings[(gap.meter_id, after)], len(missing))
        expected.update({(gap.meter_id, slot): kw for slot, kw in zip(missing, values)})
    return expected


def stored_estimates(platform, day=None) -> dict[tuple[str, datetime], float]:
    where, params = ("WHERE partition_date = %s", (day,)) if day else ("", ())
    rows = platform.query(f"SELECT meter_id, slot_ts, value_kw, method, from_reading_ts, to_reading_ts "
                          f"FROM estimated_readings {where}", *params)
    for _, slot, _, method, start, end in rows:
        assert method == "LINEAR" and start == slot - timedelta(minutes=15 * ((slot - start) // timedelta(minutes=15)))
        assert start < slot < end
    return {(m, slot): kw for m, slot, kw, *_ in rows}


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture
def platform(point_platform, s3_env, database_url, monkeypatch, tmp_path):
    point_platform(START)
    with dg.instance_for_test() as instance:
        yield Platform(s3_env["GREENSTREAM_BUCKET"], database_url, instance)


def ingest(platform, s3_client, folder) -> dict[str, dg.ExecuteInProcessResult]:
    upload_folder(s3_client, platform.bucket, folder / "raw-data")
    results = {r.partition_key: platform.run(r) for r in platform.evaluate_sensor()}
    assert sorted(results) == [d.isoformat() for d in DAYS] and all(r.success for r in results.values())
    return results


def test_short_runs_are_estimated_exactly_and_longer_or_edge_runs_stay_missing(platform, sample, s3_client):
    manifest, folder = sample
    readings = csv_readings(folder, manifest)
    expected = expected_estimates(manifest, readings)
    lengths = {len(g.missing) for g in manifest.faults.short_gaps}
    edges = [g for g in manifest.faults.short_gaps if g.missing[0].endswith("T00:00:00Z") or
             g.missing[-1].endswith("T23:45:00Z")]
    assert expected and max(lengths) > MAX_SLOTS and edges  # the sample holds every case

    results = ingest(platform, s3_client, folder)

    assert stored_estimates(platform) == expected
    # Estimates never enter the readings.
    slots = [(m, ts) for m, ts in expected]
    in_readings = platform.query("SELECT count(*) FROM meter_readings WHERE (meter_id, reading_ts) IN "
                                 f"({', '.join(['(%s, %s)'] * len(slots))})", *[v for s in slots for v in s])
    assert in_readings == [(0,)]
    for day in DAYS:
        mine = {k: v for k, v in expected.items() if k[1].date() == day}
        lake_day = lake.read_lake_day(s3_client, platform.bucket, "estimated", day)
        assert {(m, ts): kw for m, ts, kw in lake_day.select("meter_id", "slot_ts", "value_kw").iter_rows()} == mine
        daily = lake.read_lake_day(s3_client, platform.bucket, "meter_daily", day)
        per_meter = {m: n for m, n in daily.select("meter_id", "estimated_slots").iter_rows() if n}
        assert per_meter == {m: sum(1 for k in mine if k[0] == m) for m, _ in mine}
        energy = float(daily["energy_kwh_estimated"].sum())
        assert energy == pytest.approx(sum(mine.values()) * 0.25)

        check = check_results(results[day.isoformat()])["estimation"]
        assert check.passed and check.partition == day.isoformat()
        numbers = {k: v.value for k, v in check.metadata.items()}
        missing = sum(len(g.missing) for g in manifest.faults.short_gaps if g.date == day.isoformat())
        assert numbers["estimated_slots"] == len(mine)
        assert numbers["meters_with_estimates"] == len({m for m, _ in mine})
        assert numbers["missing_slot_share"] == pytest.approx(round((missing - len(mine)) / (96 * 60), 6))


def test_a_late_reading_withdraws_its_estimate_and_identical_reruns_change_nothing(platform, sample, s3_client):
    manifest, folder = sample
    expected = expected_estimates(manifest, csv_readings(folder, manifest))
    ingest(platform, s3_client, folder)
    stamps = dict(((m, ts), at) for m, ts, at in platform.query(
        "SELECT meter_id, slot_ts, estimated_at FROM estimated_readings"))

    # The same day again: not one estimate written.
    day = DAYS[0]
    job = platform.defs.resolve_job_def("ingest_partition_job")
    again = job.execute_in_process(partition_key=day.isoformat(), instance=platform.instance)
    load = materialization(again, "meter_readings")
    assert (load["estimates_inserted"], load["estimates_updated"], load["estimates_withdrawn"]) == (0, 0, 0)
    assert dict(((m, ts), at) for m, ts, at in platform.query(
        "SELECT meter_id, slot_ts, estimated_at FROM estimated_readings")) == stamps

    # A late file brings the reading of the first slot of an estimated run of the first day.
    readings = csv_readings(folder, manifest)
    meter, slot = min(k for k in expected if k[1].date() == day)
    run = sorted(k[1] for k in expected if k[0] == meter and k[1].date() == day)
    late_key = f"raw-data/{day}/zz-late/late.csv"
    put_object(s3_client, platform.bucket, late_key,
               f"meter_id,timestamp,value,unit\n{meter},{slot:%Y-%m-%dT%H:%M:%SZ},777,W\n".encode())
    [request] = platform.evaluate_sensor()
    late = platform.run(request)
    assert late.success
    load = materialization(late, "meter_readings")
    assert (load["estimates_withdrawn"], load["estimates_updated"], load["estimates_inserted"]) == (1, len(run) - 1, 0)
    assert platform.query("SELECT value_kw FROM meter_readings WHERE meter_id = %s AND reading_ts = %s",
                          meter, slot) == [(0.777,)]
    # The rest of the run is re-computed with the late reading as its new left bound.
    after = run[-1] + timedelta(minutes=15)
    recomputed = dict(zip(run[1:], interpolated(Decimal("0.777"), readings[(meter, after)], len(run) - 1)))
    now = stored_estimates(platform)
    assert {k[1]: v for k, v in now.items() if k[0] == meter and k[1].date() == day} == recomputed
    others = {k: v for k, v in expected.items() if k[0] != meter or k[1].date() != day}
    assert {k: v for k, v in now.items() if k[0] != meter or k[1].date() != day} == others
    [(bound,)] = platform.query("SELECT DISTINCT from_reading_ts FROM estimated_readings WHERE meter_id = %s "
                                "AND partition_date = %s", meter, day) or [(slot,)]
    assert bound == slot


def test_estimation_switched_off_leaves_the_table_empty(platform, sample, s3_client, monkeypatch):
    manifest, folder = sample
    monkeypatch.setenv("GREENSTREAM_MAX_ESTIMATE_SLOTS", "0")
    platform.defs = build_definitions(load_settings())
    results = ingest(platform, s3_client, folder)
    assert platform.query("SELECT count(*) FROM estimated_readings") == [(0,)]
    for day in DAYS:
        assert lake.read_lake_day(s3_client, platform.bucket, "estimated", day).height == 0
        assert lake.read_lake_day(s3_client, platform.bucket, "meter_daily", day)["estimated_slots"].sum() == 0
        numbers = {k: v.value for k, v in check_results(results[day.isoformat()])["estimation"].metadata.items()}
        missing = sum(len(g.missing) for g in manifest.faults.short_gaps if g.date == day.isoformat())
        assert numbers["estimated_slots"] == 0
        assert numbers["missing_slot_share"] == pytest.approx(round(missing / (96 * 60), 6))


def test_the_journey_of_an_estimated_slot_says_it_is_an_estimate_and_from_which_readings(
        platform, sample, s3_client, capsys):
    manifest, folder = sample
    readings = csv_readings(folder, manifest)
    expected = expected_estimates(manifest, readings)
    ingest(platform, s3_client, folder)
    (meter, slot), kw = min(expected.items())
    gap = next(g for g in manifest.faults.short_gaps if g.meter_id == meter and utc(g.missing[0]) <= slot)
    before = utc(gap.missing[0]) - timedelta(minutes=15)
    after = utc(gap.missing[-1]) + timedelta(minutes=15)

    capsys.readouterr()
    asked = slot + timedelta(minutes=7)  # any time inside the slot
    assert cli.main(["journey", "--meter", meter, "--timestamp", asked.isoformat(), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["kind"] == "estimate" and facts["method"] == "LINEAR" and facts["value_kw"] == kw
    assert facts["slot_ts"] == slot.isoformat()
    assert (facts["from_reading"]["reading_ts"], facts["to_reading"]["reading_ts"]) == (before.isoformat(),
                                                                                      after.isoformat())
    assert facts["from_reading"]["value_kw"] == float(readings[(meter, before)])
    assert facts["to_reading"]["value_kw"] == float(readings[(meter, after)])
    assert facts["table"] == "estimated_readings" and facts["partition_table"].startswith("estimated_readings_p")
    assert facts["lake_key"] == lake.lake_day_key("estimated", slot.date()) and facts["lake_value_kw"] == kw

    assert cli.main(["journey", "--meter", meter, "--timestamp", slot.isoformat()]) == 0
    story = capsys.readouterr().out
    assert "is an ESTIMATE, not a reading" in story and "LINEAR interpolation" in story
    assert f"the reading at {before:%Y-%m-%dT%H:%M:%SZ}" in story and f"{after:%Y-%m-%dT%H:%M:%SZ}" in story
    assert "estimated_readings" in story and lake.lake_day_key("estimated", slot.date()) in story
