"""The synthetic data generator: layout, determinism, and every injection where the manifest says.

The files are read back with Python's csv and gzip modules and checked against
the spec with a small reader written here, independent of the generator and of
the platform's rules.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pytest

from greenstream_dagster import cli
from greenstream_dagster.generator import GeneratorConfig, GeneratorError, Manifest, generate, with_preset
from greenstream_dagster.generator.load_profile import build_fleet, day_load_kw, day_shapes
from greenstream_dagster.rules.landing_key import IgnoredKey, parse_landing_key

START = date(2024, 4, 15)
KEY = re.compile(r"^raw-data/[0-9]{4}-[0-9]{2}-[0-9]{2}/(?:.+/)?[^/]+\.(?:csv|csv\.gz)$")
METER = re.compile(r"SM-[0-9]{1,12}")
STAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2})?")
VALUE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
FACTORS = {"W": Decimal("0.001"), "kW": Decimal(1), "MW": Decimal(1000)}
READABLE = ("readings", "revisions", "redelivery")


# -- an independent reader of the landing zone (SPEC §1–§2) ----------------------------------


def parse_timestamp(text: str) -> datetime | None:
    match = STAMP.fullmatch(text)
    if not match:
        return None
    y, mo, d, h, mi, s, zone = match.groups()
    try:
        offset = timedelta(0)
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone(offset))
    except ValueError:
        return None
    return local.astimezone(timezone.utc)


def physical_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8").removeprefix("\ufeff")
    lines = text.split("\n")
    assert lines[-1] == "", f"{path}: no line end after the last line"
    return [line.removesuffix("\r") for line in lines[:-1]]


def fields_of(line: str) -> list[str]:
    return next(csv.reader([line]))


def rows_of(path: Path, partition: date):
    """(line, fields by name or None, quarantine code or None) per data row."""
    lines = physical_lines(path)
    header = [name.strip().lower() for name in fields_of(lines[0])]
    index = {name: header.index(name) for name in ("meter_id", "timestamp", "value", "unit")}
    for number, line in enumerate(lines[1:], start=2):
        if line == "":
            continue
        fields = fields_of(line)
        if len(fields) != len(header):
            yield number, None, "MALFORMED_ROW"
            continue
        row = {name: fields[i].strip() for name, i in index.items()}
        instant = parse_timestamp(row["timestamp"])
        code = ("MISSING_METER_ID" if not row["meter_id"]
                else "INVALID_METER_ID" if not METER.fullmatch(row["meter_id"])
                else "MISSING_TIMESTAMP" if not row["timestamp"]
                else "INVALID_TIMESTAMP" if instant is None
                else "TIMESTAMP_OUTSIDE_PARTITION" if instant.date() != partition
                else None)
        row["instant"] = instant
        yield number, row, code


def value_kw(value: str, unit: str) -> float | None:
    if not value or not unit or not VALUE.fullmatch(value) or unit not in FACTORS:
        return None
    return float((Decimal(value) * FACTORS[unit]).quantize(Decimal("0.0001"), ROUND_HALF_EVEN))


class Landing:
    """The generated files read back: placeable rows, winners, quarantine."""

    def __init__(self, out: Path, manifest: Manifest):
        self.out, self.manifest = out, manifest
        self.placeable = defaultdict(list)  # (meter, instant) -> [(key, line, value, unit)]
        self.quarantined = defaultdict(lambda: defaultdict(int))  # date -> code -> n
        self.codes = {}  # (key, line) -> code
        self.data_rows = defaultdict(int)
        for entry in sorted(manifest.files, key=lambda f: f.key.encode()):  # delivery order
            if entry.kind not in READABLE:
                continue
            partition = date.fromisoformat(entry.key.split("/")[1])
            for line, row, code in rows_of(out / entry.key, partition):
                self.data_rows[partition] += 1
                if code:
                    self.quarantined[partition][code] += 1
                    self.codes[(entry.key, line)] = code
                else:
                    self.placeable[(row["meter_id"], row["instant"])].append(
                        (entry.key, line, row["value"], row["unit"]))

    def winners(self) -> dict:
        return {k: rows[-1] for k, rows in self.placeable.items()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("landing")
    config = with_preset(GeneratorConfig(out=out, meters=150, days=7, seed=7, meters_per_file=60,
                                         gzip_share=0.3), "default")
    manifest = generate(config)
    return out, manifest, Landing(out, manifest)


def line_of(out: Path, key: str, line: int) -> str:
    return physical_lines(out / key)[line - 1]


# -- layout and determinism ----------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    def files(out, seed):
        generate(with_preset(GeneratorConfig(out=out, meters=40, days=2, seed=seed, meters_per_file=15,
                                             gzip_share=0.5), "default"))
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first, second = files(tmp_path / "a", 11), files(tmp_path / "b", 11)
    assert first == second
    assert files(tmp_path / "c", 12) != first


def test_keys_follow_the_landing_layout_except_the_ignored_ones(dataset):
    out, manifest, _ = dataset
    on_disk = {str(p.relative_to(out)) for p in (out / "raw-data").rglob("*") if p.is_file()}
    assert on_disk == {f.key for f in manifest.files}
    ignored = {k.key for k in manifest.ignored_keys}
    for key in on_disk - ignored:
        assert KEY.match(key), key
        assert parse_landing_key(key).gzip == key.endswith(".gz")
    for key in ignored:
        with pytest.raises(IgnoredKey):
            parse_landing_key(key)
    for entry in manifest.files:
        assert (out / entry.key).stat().st_size == entry.bytes
    assert manifest.totals["files"] == len(manifest.files)


def test_each_day_lands_in_its_own_date_folder_and_later_files_sort_last(dataset):
    out, manifest, landing = dataset
    for (_meter, instant), rows in landing.placeable.items():
        for key, *_ in rows:
            assert key.startswith(f"raw-data/{instant.date().isoformat()}/")
    for day in manifest.days:
        keys = sorted((f.key for f in manifest.files if f.key.startswith(f"raw-data/{day}/")), key=str.encode)
        kinds = [next(f.kind for f in manifest.files if f.key == k) for k in keys]
        late = [i for i, kind in enumerate(kinds) if kind in ("revisions", "redelivery")]
        readings = [i for i, kind in enumerate(kinds) if kind == "readings"]
        assert late and max(readings) < min(late)


def test_small_datasets_use_every_timestamp_style(dataset):
    _, manifest, _ = dataset
    assert {f.timestamp_style for f in manifest.files if f.kind == "readings"} == {
        "zulu", "space", "utc_offset", "fraction", "plus_two", "minus_five"}


def test_gzip_files_decompress_to_the_header(dataset):
    out, manifest, _ = dataset
    gzipped = [f for f in manifest.files if f.kind == "readings" and f.gzip]
    assert gzipped
    for entry in gzipped:
        assert entry.key.endswith(".csv.gz")
        text = gzip.decompress((out / entry.key).read_bytes()).decode("utf-8").lstrip("\ufeff")
        assert text.split("\n", 1)[0].strip().lower().replace(" ", "").startswith(("meter_id", '"meter_id', "unit"))


# -- clean meters --------------------------------------------------------------------------


def test_clean_meters_have_96_readings_a_day_one_per_slot(dataset):
    out, manifest, landing = dataset
    injected = set(manifest.injected_meter_ids)
    per_day = defaultdict(set)
    for (meter, instant), rows in landing.placeable.items():
        if meter not in injected:
            assert len(rows) == 1, (meter, instant)
            assert instant.minute % 15 == 0 and instant.second == 0
            per_day[(meter, instant.date())].add(instant)
    clean = {meter for meter, _ in per_day}
    assert len(clean) == manifest.meters - len(injected)
    for day in manifest.days:
        for meter in clean:
            assert len(per_day[(meter, date.fromisoformat(day))]) == 96


def test_a_clean_dataset_has_no_injection(tmp_path):
    manifest = generate(GeneratorConfig(out=tmp_path, meters=30, days=3, seed=5, meters_per_file=7))
    landing = Landing(tmp_path, manifest)
    assert not landing.quarantined
    assert len(landing.placeable) == 30 * 3 * 96
    assert all(value_kw(v, u) is not None and 0 < value_kw(v, u) < 100
               for (_, _, v, u), in landing.placeable.values())
    assert manifest.injected_meter_ids == []
    assert all(not (e.stuck_meters or e.spike_readings or e.gap_meters) for e in manifest.expected)
    assert {f.kind for f in manifest.files} == {"readings"}


def test_load_model_never_trips_the_fault_rules_on_a_large_sample():
    """SPEC §3 by numpy: no reading above mean + 4σ of any window of 1–7 days ending on it,
    no day with variance near 0.01 kW², every value inside 0–100 kW."""
    meters, days, seed = 4000, 14, 3
    fleet = build_fleet(meters, seed)
    shapes = day_shapes(fleet)
    kw = np.stack([np.rint(day_load_kw(fleet, seed, d, START + timedelta(days=d), shapes) * 1000) / 1000
                   for d in range(days)], axis=1)  # (meters, days, 96), whole watts as written
    assert kw.min() > 0.05 and kw.max() < 20.0
    assert kw.var(axis=2, ddof=1).min() > 0.025
    worst = 0.0
    for last in range(days):
        for first in range(max(0, last - 6), last + 1):
            window = kw[:, first:last + 1, :].reshape(meters, -1)
            mean, std = window.mean(axis=1), window.std(axis=1, ddof=1)
            worst = max(worst, float(((kw[:, last, :] - mean[:, None]) / std[:, None]).max()))
    assert worst < 3.6


# -- injections where the manifest says -----------------------------------------------------


def test_quarantine_rows_sit_on_the_named_line_and_fail_with_their_code(dataset):
    out, manifest, landing = dataset
    assert {q.code for q in manifest.quarantine} == {
        "MALFORMED_ROW", "MISSING_METER_ID", "INVALID_METER_ID", "MISSING_TIMESTAMP",
        "INVALID_TIMESTAMP", "TIMESTAMP_OUTSIDE_PARTITION"}
    for q in manifest.quarantine:
        assert line_of(out, q.key, q.line) == q.raw_line
        assert landing.codes[(q.key, q.line)] == q.code, q
    # … and nothing else in the files is unplaceable.
    assert len(landing.codes) == len(manifest.quarantine)
    for expected in manifest.expected:
        assert dict(landing.quarantined[date.fromisoformat(expected.date)]) == {
            k: v for k, v in expected.quarantined.items() if v}


def test_validation_rows_carry_the_named_value_and_unit(dataset):
    out, manifest, landing = dataset
    kinds = {v.kind for v in manifest.validation}
    assert kinds == {"INVALID_VALUE", "UNIT_NOT_ALLOWED", "MISSING_VALUE", "MISSING_UNIT",
                     "OUT_OF_RANGE_LOW", "OUT_OF_RANGE_HIGH", "UNUSUAL_NUMBER"}
    winners = landing.winners()
    for v in manifest.validation:
        key, line, value, unit = winners[(v.meter_id, parse_timestamp(v.timestamp))]
        assert (key, line) == (v.key, v.line)
        assert (value or None, unit or None) == (v.value_raw, v.unit_raw)
        kw = value_kw(value, unit)
        errors = ([] if not value or VALUE.fullmatch(value) else ["INVALID_VALUE"]) + (
            [] if not unit or unit in FACTORS else ["UNIT_NOT_ALLOWED"])
        assert v.expected["validation_errors"] == errors
        assert v.expected["value_kw"] == kw
        assert v.expected["out_of_range"] == (kw is not None and not 0 <= kw <= 100)
        usable = kw is not None and 0 <= kw <= 100 and not errors
        assert v.expected["usable"] == usable == (v.kind == "UNUSUAL_NUMBER")


def test_revisions_come_later_with_another_value(dataset):
    out, manifest, landing = dataset
    assert manifest.revisions
    for r in manifest.revisions:
        rows = landing.placeable[(r.meter_id, parse_timestamp(r.timestamp))]
        assert [(k, n, v) for k, n, v, _ in rows] == [(r.old_key, r.old_line, r.old_value),
                                                      (r.new_key, r.new_line, r.new_value)]
        assert r.old_value != r.new_value and r.new_key.encode() > r.old_key.encode()
        for value, record in ((r.old_value, r.old_record_id), (r.new_value, r.new_record_id)):
            assert record == hashlib.sha256(f"{r.meter_id}|{r.timestamp}|{value}".encode()).hexdigest()


def test_duplicates_repeat_the_same_record_later(dataset):
    out, manifest, landing = dataset
    assert {d.kind for d in manifest.duplicates} == {"REDELIVERED", "REPEATED_IN_FILE"}
    for d in manifest.duplicates:
        rows = landing.placeable[(d.meter_id, parse_timestamp(d.timestamp))]
        assert [(k, n) for k, n, _, _ in rows] == [(d.original_key, d.original_line), (d.copy_key, d.copy_line)]
        assert {(v, u) for _, _, v, u in rows} == {(d.value, d.unit)}
        assert d.record_id == hashlib.sha256(f"{d.meter_id}|{d.timestamp}|{d.value}".encode()).hexdigest()


def test_stuck_meter_repeats_one_value_all_day(dataset):
    out, manifest, landing = dataset
    assert manifest.faults.stuck
    for s in manifest.faults.stuck:
        day = date.fromisoformat(s.date)
        rows = [landing.placeable[(s.meter_id, datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
                                   + timedelta(minutes=15 * slot))] for slot in range(96)]
        assert {(k, v, u) for (k, _, v, u), in rows} == {(s.key, s.value_raw, s.unit)}
        assert (rows[0][0][1], rows[-1][0][1]) == (s.first_line, s.last_line)


def test_spike_is_a_usable_reading_far_above_its_window(dataset):
    out, manifest, landing = dataset
    assert manifest.faults.spikes
    for s in manifest.faults.spikes:
        key, line, value, unit = landing.winners()[(s.meter_id, parse_timestamp(s.timestamp))]
        assert (key, line, value, unit) == (s.key, s.line, s.value_raw, s.unit)
        assert line_of(out, s.key, s.line).count(s.meter_id) == 1
        kw = value_kw(value, unit)
        assert 0 < kw <= 100 and kw == s.value_kw
        assert kw > s.window_mean_kw + 4 * s.window_std_kw


def test_gap_meter_is_silent_on_its_silent_days(dataset):
    out, manifest, landing = dataset
    assert manifest.faults.gaps
    for g in manifest.faults.gaps:
        days = {instant.date().isoformat() for meter, instant in landing.placeable if meter == g.meter_id}
        assert days == set(manifest.days) - set(g.silent_dates)
        assert g.gap_dates


def test_short_gap_meters_miss_exactly_their_run_each_day(dataset):
    """SPEC §3b: one run of 1–8 consecutive slots a day, the rest of the day there; some at the edges."""
    out, manifest, landing = dataset
    gaps = manifest.faults.short_gaps
    assert len(gaps) == round(manifest.meters * 0.03) * len(manifest.days)
    assert {g.meter_id for g in gaps} <= set(manifest.injected_meter_ids)
    for g in gaps:
        missing = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in g.missing]
        assert 1 <= len(missing) <= 8
        assert all(b - a == timedelta(minutes=15) for a, b in zip(missing, missing[1:]))
        midnight = datetime.fromisoformat(g.date).replace(tzinfo=timezone.utc)
        present = {instant for meter, instant in landing.placeable if meter == g.meter_id
                   and instant.date() == midnight.date()}
        every_slot = {midnight + timedelta(minutes=15 * s) for s in range(96)}
        assert present == every_slot - set(missing)
    assert any(g.missing[0].endswith("T00:00:00Z") for g in gaps)
    assert any(g.missing[-1].endswith("T23:45:00Z") for g in gaps)


def test_bad_files_cannot_be_read_for_their_reason(dataset):
    out, manifest, _ = dataset
    kinds = {d.kind: out / d.key for d in manifest.dead_letters}
    assert set(kinds) == {"wrong_header", "duplicate_column", "not_utf8", "corrupt_gzip", "empty"}
    header = fields_of(kinds["wrong_header"].read_text().split("\n")[0])
    assert not {"meter_id", "timestamp", "value"} <= set(header)
    assert fields_of(kinds["duplicate_column"].read_text().split("\n")[0]).count("value") == 2
    with pytest.raises(UnicodeDecodeError):
        kinds["not_utf8"].read_bytes().decode("utf-8")
    with pytest.raises((EOFError, OSError)):
        gzip.decompress(kinds["corrupt_gzip"].read_bytes())
    assert kinds["empty"].stat().st_size == 0


def test_format_quirks_are_in_the_named_files(dataset):
    out, manifest, landing = dataset
    quirks = {q.quirk: q for q in manifest.format_quirks}
    assert set(quirks) == {"bom", "crlf", "blank_lines", "quoted", "extra_columns", "padded", "nested"}

    def raw(quirk):
        data = (out / quirks[quirk].key).read_bytes()
        return gzip.decompress(data) if quirks[quirk].key.endswith(".gz") else data

    assert raw("bom").startswith(b"\xef\xbb\xbf")
    assert raw("crlf").count(b"\r\n") == raw("crlf").count(b"\n")
    lines = physical_lines(out / quirks["blank_lines"].key)
    blank = [int(n) for n in re.findall(r"\d+", quirks["blank_lines"].detail.split("(lines")[1])]
    assert blank and all(lines[n - 1] == "" for n in blank) and blank[0] == 2
    assert raw("quoted").split(b"\n")[1].startswith(b'"')
    assert len(fields_of(physical_lines(out / quirks["extra_columns"].key)[0])) == 6
    assert fields_of(physical_lines(out / quirks["padded"].key)[1])[0].startswith(" SM-")
    assert quirks["nested"].key.count("/") == 3


# -- the whole dataset against the spec's rules, computed here ------------------------------


def test_expected_partitions_match_an_independent_evaluation(dataset):
    """Counts, grades and the §3 detections recomputed from the files with numpy."""
    out, manifest, landing = dataset
    days = [date.fromisoformat(d) for d in manifest.days]
    winners = landing.winners()
    usable = defaultdict(lambda: np.full((len(days), 96), np.nan))  # meter -> kW
    covered = defaultdict(lambda: np.zeros((len(days), 96), dtype=bool))
    for (meter, instant), (_, _, value, unit) in winners.items():
        d, slot = days.index(instant.date()), (instant.hour * 60 + instant.minute) // 15
        covered[meter][d, slot] = True
        kw = value_kw(value, unit)
        if kw is not None and 0 <= kw <= 100:
            usable[meter][d, slot] = kw
    injected = set(manifest.injected_meter_ids)
    for d, expected in enumerate(manifest.expected):
        stuck, spikes, gaps = set(), set(), set()
        window = slice(max(0, d - 6), d + 1)
        for meter in covered:
            today = usable[meter][d][~np.isnan(usable[meter][d])]
            if len(today) >= 48 and today.var(ddof=1) < 0.01:
                stuck.add(meter)
            values = usable[meter][window].ravel()
            values = values[~np.isnan(values)]
            if len(values) >= 96:
                limit = values.mean() + 4 * values.std(ddof=1)
                midnight = datetime.combine(days[d], datetime.min.time(), timezone.utc)
                for slot in np.flatnonzero(usable[meter][d] > limit):
                    instant = midnight + timedelta(minutes=15 * int(slot))
                    spikes.add((meter, instant.strftime("%Y-%m-%dT%H:%M:%SZ")))
                if meter not in injected:  # clean meters keep a wide margin
                    assert (usable[meter][d] - values.mean()).max() < 3.75 * values.std(ddof=1)
            if covered[meter][d].any():
                missing = 1 - covered[meter][window].sum() / (96 * (window.stop - window.start))
                if missing > 0.2:
                    gaps.add(meter)
            if meter not in injected and len(today) > 1:
                assert today.var(ddof=1) > 0.02
        assert sorted(stuck) == expected.stuck_meters
        assert sorted(spikes) == sorted((s["meter_id"], s["timestamp"]) for s in expected.spike_readings)
        assert sorted(gaps) == expected.gap_meters
        assert not (stuck | {m for m, _ in spikes} | gaps) - injected

        keys = [k for k in winners if k[1].date() == days[d]]
        assert len(keys) == expected.readings
        assert sum(len(landing.placeable[k]) for k in keys) == expected.placeable_rows
        assert landing.data_rows[days[d]] == expected.data_rows
        revisions = sum(len({v for _, _, v, _ in landing.placeable[k]}) - 1 for k in keys)
        assert revisions == expected.revisions
        grades = defaultdict(int)
        unreliable = stuck | gaps | {m for m, _ in spikes}
        for meter, instant in keys:
            _, _, value, unit = winners[(meter, instant)]
            kw = value_kw(value, unit)
            errors = (value and not VALUE.fullmatch(value)) or (unit and unit not in FACTORS)
            score = (40 if value and unit else 0) + (0 if errors else 30)
            score += (20 if kw is not None and 0 <= kw <= 100 else 0) + (0 if meter in unreliable else 10)
            grades["A" if score >= 90 else "B" if score >= 75 else "C" if score >= 60 else "F"] += 1
        assert {g: n for g, n in grades.items() if n} == {g: n for g, n in expected.grades.items() if n}


def test_manifest_loads_back(dataset):
    out, manifest, _ = dataset
    assert Manifest.load(out) == manifest


# -- configuration and CLI ---------------------------------------------------------------------


@pytest.mark.parametrize("changes, message", [
    ({"gap_days": 1, "gap_meters": 1}, "gap_days"),
    ({"gap_meters": 1, "days": 2}, "more than gap_days"),
    ({"stuck_meters": 1, "days": 1}, "at least 2 days"),
    ({"revisions": 5, "meters": 10}, "distinct meters"),
    ({"gzip_share": 1.5}, "gzip_share"),
])
def test_impossible_configurations_are_refused_with_the_reason(tmp_path, changes, message):
    with pytest.raises(GeneratorError, match=message):
        generate(GeneratorConfig(out=tmp_path, **{"meters": 20, "days": 3, **changes}))


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    config = GeneratorConfig(out=tmp_path, meters=3, days=1)
    generate(config)
    with pytest.raises(GeneratorError, match="not empty"):
        generate(config)
    assert generate(config, overwrite=True).totals["rows"] == 3 * 96


def test_cli_generates_and_prints_a_summary(tmp_path, capsys):
    code = cli.main(["generate", "--out", str(tmp_path), "--meters", "40", "--days", "3", "--seed", "4",
                     "--meters-per-file", "25", "--gzip-share", "0.5", "--spike-meters", "5%",
                     "--stuck-meters", "1", "--quarantine-rows", "1", "--dead-letter-files"])
    assert code == 0
    printed = capsys.readouterr().out
    assert re.search(r"wrote \d+ files, [\d,]+ rows, [\d.]+ MB in [\d.]+ s", printed)
    manifest = Manifest.load(tmp_path)
    assert len(manifest.faults.spikes) == 2 and len(manifest.faults.stuck) == 1
    assert len(manifest.quarantine) == 6 * 3 and manifest.dead_letters and not manifest.revisions
    assert any(f.gzip for f in manifest.files)


def test_cli_reports_an_impossible_request(tmp_path, capsys):
    assert cli.main(["generate", "--out", str(tmp_path), "--meters", "5", "--faults", "default"]) == 2
    assert "distinct meters" in capsys.readouterr().err
