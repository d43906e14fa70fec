"""`generate(config) -> Manifest`: one day at a time, load model → injections → files.

Per day: the load model gives every meter's 96 readings; the faults of the day
are written into them; the oracle records what the spec's fault rules will
flag (and the generator stops if that differs from what was injected, so
normal meters never trip a rule by chance); then each readings file is
rendered with its validation issues, quarantine rows and repeats, followed by
the day's revision, redelivery and dead-letter files.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from greenstream_dagster.generator import bad_files, faults
from greenstream_dagster.generator.bad_rows import (
    QUARANTINE_CODES,
    expected_outcome,
    quarantine_row,
    validation_issue,
)
from greenstream_dagster.generator.config import GeneratorConfig, GeneratorError
from greenstream_dagster.generator.fleet_oracle import expect_fleet
from greenstream_dagster.generator.layout import (
    QUIRKS,
    FileLayout,
    plan_layouts,
    redelivery_key,
    revisions_key,
)
from greenstream_dagster.generator.load_profile import (
    SLOTS_PER_DAY,
    UNITS,
    Fleet,
    build_fleet,
    day_load_kw,
    day_shapes,
    rng_for,
)
from greenstream_dagster.generator.manifest import (
    DELIVERY_NOTE,
    FORMAT_VERSION,
    MANIFEST_NAME,
    DeadLetterFile,
    Duplicate,
    FileEntry,
    FormatQuirk,
    GapFault,
    IgnoredKey,
    Manifest,
    PartitionExpectation,
    QuarantinedRow,
    Revision,
    ShortGapFault,
    SilenceFault,
    SilentMeter,
    SpikeFault,
    StuckFault,
    ValidationRow,
)
from greenstream_dagster.generator.oracle import DayDetections, Oracle
from greenstream_dagster.generator.plan import InjectionPlan, plan_injections
from greenstream_dagster.generator.timestamps import canonical, slot_start, timestamp_column
from greenstream_dagster.generator.value_text import unit_texts, value_text, value_texts
from greenstream_dagster.generator.writer import ExtraLine, plain_csv, render, write_object

STREAM_ROWS = 5
STREAM_FILE = 6
# Meter id used by rows in objects that must never be read; no generated meter has it.
DECOY_METER = "SM-42"


def record_id(meter_id: str, instant: str, value: str) -> str:
    """SPEC §2 content id: SHA-256 of meter_id|timestamp_utc|value_text."""
    return hashlib.sha256(f"{meter_id}|{instant}|{value.strip()}".encode()).hexdigest()


@dataclass
class _Day:
    """Everything decided about one day before its files are written."""

    index: int
    day: date
    watts: np.ndarray  # as written to the readings files
    placeable: np.ndarray
    overrides: dict = field(default_factory=dict)  # (meter, slot) -> (value, unit); None is missing
    expected: dict = field(default_factory=dict)  # (meter, slot) -> validation outcome
    kinds: dict = field(default_factory=dict)  # (meter, slot) -> validation kind
    new_watts: dict = field(default_factory=dict)  # (meter, slot) -> revised value
    stuck_values: dict = field(default_factory=dict)  # meter -> watts
    spike_stats: dict = field(default_factory=dict)  # meter -> (mean, std)


class _Run:
    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.days = [config.start + timedelta(days=d) for d in range(config.days)]
        self.fleet: Fleet = build_fleet(config.meters, config.seed)
        self.ids = pl.Series("meter_id", self.fleet.meter_ids)
        self.shapes = day_shapes(self.fleet)
        self.plan: InjectionPlan = plan_injections(config)
        self.layouts = plan_layouts(config, self.days)
        self.oracle = Oracle(config.meters, config.days, config.rules)
        self.gap_dates: dict[int, list[str]] = {g.meter: [] for g in self.plan.gaps}
        # Silent meters are flagged as gaps after they return, like gap meters.
        self.gap_dates.update({s.meter: [] for s in self.plan.silences})
        self.present = np.zeros((config.meters, config.days), dtype=bool)
        units = np.bincount(self.fleet.unit_codes, minlength=len(UNITS))
        self.manifest = Manifest(
            format_version=FORMAT_VERSION,
            config={k: v for k, v in config.to_json().items() if k != "out"},
            delivery=DELIVERY_NOTE,
            partitions_start=config.start.isoformat(),
            days=[d.isoformat() for d in self.days],
            meters=config.meters,
            units={u: int(n) for u, n in zip(UNITS, units)},
            injected_meter_ids=sorted(str(self.fleet.meter_ids[m]) for m in self.plan.dedicated_meters()),
            totals={},
        )

    # -- numbers ---------------------------------------------------------------

    def _numbers(self, d: int) -> tuple[_Day, DayDetections]:
        config, fleet, plan = self.config, self.fleet, self.plan
        day = self.days[d]
        watts = np.rint(day_load_kw(fleet, config.seed, d, day, self.shapes) * 1000).astype(np.int64)
        state = _Day(d, day, watts, np.ones(watts.shape, dtype=bool))
        for stuck in plan.on_day(plan.stuck, d):
            state.stuck_values[stuck.meter] = faults.freeze_day(watts, stuck.meter)
        for gap in plan.gaps:
            if gap.first_day <= d < gap.first_day + config.gap_days:
                faults.silence(state.placeable, gap.meter)
        for quiet in plan.silences:
            if quiet.first_day <= d and (quiet.last_day is None or d <= quiet.last_day):
                faults.silence(state.placeable, quiet.meter)
        for short in plan.on_day(plan.short_gaps, d):
            state.placeable[short.meter, short.first_slot:short.first_slot + short.slots] = False
        self.present[:, d] = state.placeable.any(axis=1)
        for spike in plan.on_day(plan.spikes, d):
            m = spike.meter
            watts[m, spike.slot] = faults.spike_watts(
                watts[m] / 1000, spike.slot, float(fleet.scale_kw[m]), spike.factor,
                self.oracle.window_sums_before(d, m), config.rules)
        rng = rng_for(config.seed, STREAM_ROWS, d)
        usable = state.placeable.copy()
        winning = watts.copy()
        for row in plan.on_day(plan.validation, d):
            m, s = row.meter, row.slot
            unit = UNITS[fleet.unit_codes[m]]
            value, unit_text = validation_issue(row.kind, int(watts[m, s]), int(fleet.unit_codes[m]), unit, rng)
            outcome = expected_outcome(value, unit_text, config.rules)
            state.overrides[(m, s)] = (value or None, unit_text or None)
            state.expected[(m, s)] = outcome
            state.kinds[(m, s)] = row.kind
            usable[m, s] = outcome["usable"]
        for row in plan.on_day(plan.revisions, d):
            m, s = row.meter, row.slot
            old = int(watts[m, s])
            new = int(round(old * rng.uniform(0.90, 0.98)))
            state.new_watts[(m, s)] = new if new != old else old - 1
            winning[m, s] = state.new_watts[(m, s)]
        usable_kw = np.where(usable, winning / 1000, np.nan)
        detections = self.oracle.add_day(d, usable_kw, state.placeable)
        self._check_detections(d, detections)
        return state, detections

    def _check_detections(self, d: int, det: DayDetections) -> None:
        """The spec's rules must flag exactly the injected faults, nothing by chance."""
        plan = self.plan
        stuck = {s.meter for s in plan.on_day(plan.stuck, d)}
        spikes = {(s.meter, s.slot) for s in plan.on_day(plan.spikes, d)}
        found_spikes = set(zip(det.spike_meters.tolist(), det.spike_slots.tolist()))
        gap_meters = set(self.gap_dates)
        found_gaps = set(det.gap.tolist())
        if set(det.stuck.tolist()) != stuck or found_spikes != spikes or not found_gaps <= gap_meters:
            raise GeneratorError(
                f"day {self.days[d]}: the fault rules would flag stuck {sorted(det.stuck.tolist())}, "
                f"spikes {sorted(found_spikes)}, gaps {sorted(found_gaps - gap_meters)} (meter "
                f"indices) but the injections are stuck {sorted(stuck)}, spikes {sorted(spikes)}")
        for m in found_gaps:
            self.gap_dates[m].append(self.days[d].isoformat())

    # -- files -----------------------------------------------------------------

    def _write(self, key: str, data: bytes, entry: FileEntry) -> FileEntry:
        write_object(self.config.out, key, data)
        entry.bytes = len(data)
        self.manifest.files.append(entry)
        return entry

    def _readings_file(self, state: _Day, layout: FileLayout, quarantine: list, f: int):
        fleet, d, day = self.fleet, state.index, state.day
        lo, hi = layout.first_meter, layout.end_meter
        block = state.placeable[lo:hi]
        local, slots = np.nonzero(block)
        meters = local + lo
        row_of = np.cumsum(block.ravel()) - 1  # frame row of (meter - lo) * 96 + slot
        rng = rng_for(self.config.seed, STREAM_FILE, d, f)
        frame = pl.DataFrame([
            self.ids.gather(meters),
            timestamp_column(day, layout.timestamp_style, slots, rng),
            value_texts(state.watts[meters, slots], fleet.unit_codes[meters]),
            unit_texts(fleet.unit_codes[meters]),
        ])
        mine = {(m, s): v for (m, s), v in state.overrides.items() if lo <= m < hi}
        if mine:
            rows = [int(row_of[(m - lo) * SLOTS_PER_DAY + s]) for m, s in mine]
            frame = frame.with_columns(
                frame["value"].scatter(rows, [v for v, _ in mine.values()]),
                frame["unit"].scatter(rows, [u for _, u in mine.values()]),
            )

        def row(m: int, s: int) -> int:
            return int(row_of[(m - lo) * SLOTS_PER_DAY + s])

        extras: list[ExtraLine] = []
        tags: list[tuple] = []
        for q, bad in quarantine:
            extras.append(ExtraLine(int(rng.integers(0, frame.height + 1)),
                                    (bad.meter_id, bad.timestamp, bad.value, bad.unit), bad.field_delta))
            tags.append(("quarantine", q))
        repeats = [r for r in self.plan.on_day(self.plan.duplicates, d)
                   if lo <= r.meter < hi and r.kind == "REPEATED_IN_FILE"]
        for r in repeats:
            original = row(r.meter, r.slot)
            fields = tuple(v or "" for v in frame.row(original))
            extras.append(ExtraLine(int(rng.integers(original + 1, frame.height + 1)), fields))
            tags.append(("repeat", r))
        if "blank_lines" in layout.quirks:
            for anchor in (0, frame.height // 2, frame.height):
                extras.append(ExtraLine(anchor, None))
                tags.append(("blank", anchor))

        rendered = render(frame, layout, extras)
        entry = self._write(layout.key, rendered.data, FileEntry(
            key=layout.key, kind="readings", rows=rendered.data_rows, bytes=0, gzip=layout.gzip,
            timestamp_style=layout.timestamp_style, quirks=sorted(layout.quirks)))
        lines = rendered.base_lines
        manifest = self.manifest
        date_text = day.isoformat()
        blank_lines = []
        for (tag, item), line, text in zip(tags, rendered.extra_lines, rendered.extra_texts):
            if tag == "quarantine":
                manifest.quarantine.append(QuarantinedRow(item.code, date_text, layout.key, line, text))
            elif tag == "repeat":
                original = row(item.meter, item.slot)
                meter_id, stamp, value, unit = (v or "" for v in frame.row(original))
                manifest.duplicates.append(Duplicate(
                    item.kind, meter_id, date_text, canonical(slot_start(day, item.slot)), value.strip(),
                    unit.strip(), record_id(meter_id, canonical(slot_start(day, item.slot)), value),
                    layout.key, int(lines[original]), layout.key, line))
            else:
                blank_lines.append(line)
        for quirk in sorted(layout.quirks):
            detail = QUIRKS[quirk] + (f" (lines {blank_lines})" if quirk == "blank_lines" else "")
            manifest.format_quirks.append(FormatQuirk(layout.key, quirk, detail))
        for m, value_w in state.stuck_values.items():
            if lo <= m < hi:
                unit_code = int(fleet.unit_codes[m])
                manifest.faults.stuck.append(StuckFault(
                    str(fleet.meter_ids[m]), date_text, value_text(value_w, unit_code), UNITS[unit_code],
                    value_w / 1000, layout.key, int(lines[row(m, 0)]), int(lines[row(m, SLOTS_PER_DAY - 1)])))
        for spike in self.plan.on_day(self.plan.spikes, d):
            m = spike.meter
            if lo <= m < hi:
                unit_code = int(fleet.unit_codes[m])
                mean, std = state.spike_stats[m]
                manifest.faults.spikes.append(SpikeFault(
                    str(fleet.meter_ids[m]), date_text, canonical(slot_start(day, spike.slot)),
                    value_text(int(state.watts[m, spike.slot]), unit_code), UNITS[unit_code],
                    int(state.watts[m, spike.slot]) / 1000, layout.key, int(lines[row(m, spike.slot)]),
                    round(mean, 6), round(std, 6)))
        for (m, s), (value, unit) in mine.items():
            manifest.validation.append(ValidationRow(
                state.kinds[(m, s)], date_text, str(fleet.meter_ids[m]), canonical(slot_start(day, s)),
                layout.key, int(lines[row(m, s)]),
                None if value is None else value.strip(), None if unit is None else unit.strip(),
                state.expected[(m, s)]))
        originals = {}
        for r in self.plan.on_day(self.plan.revisions, d) + self.plan.on_day(self.plan.duplicates, d):
            if lo <= r.meter < hi and r.kind != "REPEATED_IN_FILE":
                originals[(r.meter, r.slot)] = (layout.key, int(lines[row(r.meter, r.slot)]),
                                                tuple(v or "" for v in frame.row(row(r.meter, r.slot))))
        return entry, originals

    def _day_files(self, state: _Day, detections) -> None:
        config, fleet, plan, manifest = self.config, self.fleet, self.plan, self.manifest
        d, day = state.index, state.day
        date_text = day.isoformat()
        rng = rng_for(config.seed, STREAM_ROWS, d, 1)
        layouts = self.layouts[d]
        by_file: dict[int, list] = {}
        for q in plan.on_day(plan.quarantine, d):
            bad = quarantine_row(q.code, day, str(fleet.meter_ids[q.borrowed_meter]), rng)
            by_file.setdefault(int(rng.integers(0, len(layouts))), []).append((q, bad))
        entries, originals = [], {}
        for f, layout in enumerate(layouts):
            entry, found = self._readings_file(state, layout, by_file.get(f, []), f)
            entries.append(entry)
            originals.update(found)

        revisions = plan.on_day(plan.revisions, d)
        if revisions:
            key = revisions_key(day)
            rows = []
            for i, r in enumerate(revisions):
                unit_code = int(fleet.unit_codes[r.meter])
                meter_id, stamp = str(fleet.meter_ids[r.meter]), canonical(slot_start(day, r.slot))
                new_value = value_text(state.new_watts[(r.meter, r.slot)], unit_code)
                old_key, old_line, old_fields = originals[(r.meter, r.slot)]
                rows.append((meter_id, stamp, new_value, UNITS[unit_code]))
                manifest.revisions.append(Revision(
                    meter_id, date_text, stamp, UNITS[unit_code], old_fields[2].strip(), new_value,
                    old_key, old_line, key, i + 2, record_id(meter_id, stamp, old_fields[2]),
                    record_id(meter_id, stamp, new_value)))
            entries.append(self._write(key, plain_csv(rows), FileEntry(key, "revisions", len(rows), 0)))
        redelivered = [r for r in plan.on_day(plan.duplicates, d) if r.kind == "REDELIVERED"]
        if redelivered:
            key = redelivery_key(day)
            rows = []
            for i, r in enumerate(redelivered):
                old_key, old_line, fields = originals[(r.meter, r.slot)]
                fields = tuple(v.strip() for v in fields)
                rows.append(fields)
                stamp = canonical(slot_start(day, r.slot))
                manifest.duplicates.append(Duplicate(
                    r.kind, fields[0], date_text, stamp, fields[2], fields[3],
                    record_id(fields[0], stamp, fields[2]), old_key, old_line, key, i + 2))
            entries.append(self._write(key, plain_csv(rows), FileEntry(key, "redelivery", len(rows), 0)))

        decoy = f"{DECOY_METER},{date_text}T12:00:00Z,1000,W"
        dead = 0
        if config.dead_letter_files:
            for kind, (name, reason) in bad_files.DEAD_LETTER_KINDS.items():
                if self._dead_letter_day(kind) != d:
                    continue
                key = f"raw-data/{date_text}/{name}"
                data = bad_files.dead_letter_content(kind, decoy, rng)
                self._write(key, data, FileEntry(key, "dead_letter", 0, 0, gzip=key.endswith(".gz")))
                manifest.dead_letters.append(DeadLetterFile(key, date_text, kind, reason))
                dead += 1
        if config.ignored_keys and d == 0:
            for key, reason in bad_files.ignored_keys(day):
                data = f"meter_id,timestamp,value,unit\n{decoy}\n".encode()
                self._write(key, data, FileEntry(key, "ignored", 1, 0))
                manifest.ignored_keys.append(IgnoredKey(key, reason))

        self._expect(state, detections, entries, dead)

    def _dead_letter_day(self, kind: str) -> int:
        return list(bad_files.DEAD_LETTER_KINDS).index(kind) % self.config.days

    def _expect(self, state: _Day, det, entries: list[FileEntry], dead: int) -> None:
        plan, fleet, d = self.plan, self.fleet, state.index
        quarantined = {code: 0 for code in QUARANTINE_CODES}
        for q in plan.on_day(plan.quarantine, d):
            quarantined[q.code] += 1
        data_rows = sum(e.rows for e in entries)
        grades = {"A": int(state.placeable.sum()), "B": 0, "C": 0, "F": 0}
        for outcome in state.expected.values():
            grades["A"] -= 1
            grades[outcome["quality_grade"]] += 1
        self.manifest.expected.append(PartitionExpectation(
            date=state.day.isoformat(),
            readings_files=len(entries),
            dead_letter_files=dead,
            data_rows=data_rows,
            placeable_rows=data_rows - sum(quarantined.values()),
            quarantined=quarantined,
            readings=int(state.placeable.sum()),
            revisions=len(plan.on_day(plan.revisions, d)),
            grades=grades,
            stuck_meters=sorted(str(fleet.meter_ids[m]) for m in det.stuck),
            spike_readings=sorted(
                ({"meter_id": str(fleet.meter_ids[m]), "timestamp": canonical(slot_start(state.day, int(s)))}
                 for m, s in zip(det.spike_meters, det.spike_slots)), key=lambda r: (r["meter_id"], r["timestamp"])),
            gap_meters=sorted(str(fleet.meter_ids[m]) for m in det.gap),
            **self._fleet(d),
        ))

    def _fleet(self, d: int) -> dict:
        ids, days = self.fleet.meter_ids, self.days
        fleet = expect_fleet(self.present, d, self.config.rules.silent_lookback_days)
        return {
            "silent_meters": [SilentMeter(str(ids[m]), days[last].isoformat(), n) for m, last, n in fleet.silent],
            "known_fleet": fleet.known_fleet,
            "new_meters": sorted(str(ids[m]) for m in fleet.new),
            "returning_meters": sorted(str(ids[m]) for m in fleet.returning),
        }

    def run(self) -> Manifest:
        for d in range(self.config.days):
            state, detections = self._numbers(d)
            for m in {s.meter for s in self.plan.on_day(self.plan.spikes, d)}:
                state.spike_stats[m] = self.oracle.window_mean_std(d, m)
            self._day_files(state, detections)
        for gap in self.plan.gaps:
            silent = [self.days[gap.first_day + i].isoformat() for i in range(self.config.gap_days)]
            self.manifest.faults.gaps.append(
                GapFault(str(self.fleet.meter_ids[gap.meter]), silent, self.gap_dates[gap.meter]))
            if not self.gap_dates[gap.meter]:
                raise GeneratorError(f"gap meter {self.fleet.meter_ids[gap.meter]} is never flagged")
        for quiet in self.plan.silences:
            last = self.config.days - 1 if quiet.last_day is None else quiet.last_day
            self.manifest.faults.silences.append(SilenceFault(
                str(self.fleet.meter_ids[quiet.meter]),
                [self.days[k].isoformat() for k in range(quiet.first_day, last + 1)],
                None if quiet.last_day is None else self.days[quiet.last_day + 1].isoformat(),
                self.gap_dates[quiet.meter]))
        for short in self.plan.short_gaps:
            day = self.days[short.day]
            self.manifest.faults.short_gaps.append(ShortGapFault(
                str(self.fleet.meter_ids[short.meter]), day.isoformat(),
                [canonical(slot_start(day, s)) for s in range(short.first_slot, short.first_slot + short.slots)]))
        files = self.manifest.files
        self.manifest.totals = {
            "files": len(files),
            "rows": sum(f.rows for f in files),
            "bytes": sum(f.bytes for f in files),
        }
        self.manifest.write(self.config.out)
        return self.manifest


def generate(config: GeneratorConfig, *, overwrite: bool = False) -> Manifest:
    """Write the landing zone and `manifest.json` under `config.out`; return the manifest."""
    landing = config.out / "raw-data"
    if landing.exists() and any(landing.iterdir()):
        if not overwrite:
            raise GeneratorError(f"{landing} is not empty; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(landing)
    (config.out / MANIFEST_NAME).unlink(missing_ok=True)
    config.out.mkdir(parents=True, exist_ok=True)
    return _Run(config).run()
