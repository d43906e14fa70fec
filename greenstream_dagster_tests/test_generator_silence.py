"""The generator's silence injection (SPEC §3a): meters with no row at all on their silent days,
and a manifest that names them per day."""

from __future__ import annotations

import gzip
from datetime import date

import pytest

from greenstream_dagster.generator import GeneratorConfig, GeneratorError, generate


@pytest.fixture(scope="module")
def silenced(tmp_path_factory):
    out = tmp_path_factory.mktemp("silence")
    return generate(GeneratorConfig(out=out, meters=40, days=7, seed=9, meters_per_file=15,
                                    silent_meters=3, silent_days=2, vanished_meters=1)), out


def day_text(manifest, out, day: str) -> str:
    texts = []
    for f in manifest.files:
        if f.key.startswith(f"raw-data/{day}/"):
            data = (out / f.key).read_bytes()
            texts.append((gzip.decompress(data) if f.gzip else data).decode("utf-8-sig"))
    return "\n".join(texts)


def test_silent_meters_send_nothing_on_their_silent_days_and_report_otherwise(silenced):
    manifest, out = silenced
    assert len(manifest.faults.silences) == 4
    assert sum(f.returns_on is None for f in manifest.faults.silences) == 1
    for day in manifest.days:
        text = day_text(manifest, out, day)
        for fault in manifest.faults.silences:
            assert (f"{fault.meter_id}," in text) == (day not in fault.silent_dates), (fault.meter_id, day)


def test_the_manifest_names_each_silent_meter_with_its_last_day_seen(silenced):
    manifest, _ = silenced
    by_day = {e.date: {s.meter_id: (s.last_seen, s.silent_days) for s in e.silent_meters} for e in manifest.expected}
    for fault in manifest.faults.silences:
        first = date.fromisoformat(fault.silent_dates[0])
        last_seen = date.fromordinal(first.toordinal() - 1)
        for day in fault.silent_dates:
            assert by_day[day][fault.meter_id] == (last_seen.isoformat(), (date.fromisoformat(day) - last_seen).days)
        if fault.returns_on:
            assert fault.meter_id not in by_day[fault.returns_on]
            (expected,) = [e for e in manifest.expected if e.date == fault.returns_on]
            assert fault.meter_id in expected.returning_meters
        else:
            assert fault.silent_dates[-1] == manifest.days[-1]
    assert manifest.expected[0].known_fleet == 0 and len(manifest.expected[0].new_meters) == 40


@pytest.mark.parametrize("changes, message", [
    ({"silent_meters": 1, "days": 4}, r"silent_days \+ 2"),
    ({"silent_meters": 1, "silent_days": 1}, "silent_days must be at least 2"),
    ({"vanished_meters": 1, "days": 1}, "vanished_meters needs at least 2 days"),
])
def test_impossible_silences_are_refused(tmp_path, changes, message):
    with pytest.raises(GeneratorError, match=message):
        GeneratorConfig(out=tmp_path, meters=10, **changes)
