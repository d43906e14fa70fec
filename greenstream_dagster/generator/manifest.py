"""`manifest.json`: everything the generator injected, and what the platform must make of it.

Keys are landing keys relative to the output folder (`raw-data/…`), lines are
physical lines of the decompressed file with the header as line 1, timestamps
in `YYYY-MM-DDTHH:MM:SSZ` and dates in `YYYY-MM-DD`. `expected` holds, per
partition day, the counts, grades and fault detections the spec implies,
assuming the platform's partitions start on the first generated day.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DELIVERY_NOTE = (
    "The platform orders deliveries by last-modified time, then key. Revision and "
    "redelivery files are named zz-… so they sort after the day's readings files: "
    "upload in key order (or give later keys later last-modified times)."
)


@dataclass
class FileEntry:
    key: str
    kind: str  # readings | revisions | redelivery | dead_letter | ignored
    rows: int  # data rows, header and blank lines excluded
    bytes: int
    gzip: bool = False
    timestamp_style: str | None = None
    quirks: list[str] = field(default_factory=list)


@dataclass
class StuckFault:
    meter_id: str
    date: str
    value_raw: str
    unit: str
    value_kw: float
    key: str
    first_line: int
    last_line: int


@dataclass
class SpikeFault:
    meter_id: str
    date: str
    timestamp: str
    value_raw: str
    unit: str
    value_kw: float
    key: str
    line: int
    window_mean_kw: float  # over the usable readings of the window, spike included
    window_std_kw: float


@dataclass
class GapFault:
    meter_id: str
    silent_dates: list[str]
    gap_dates: list[str]  # days the communication-gap rule flags the meter


@dataclass
class SilenceFault:
    meter_id: str
    silent_dates: list[str]  # days without any row
    returns_on: str | None  # first day it reports again; None: never within the data
    gap_dates: list[str]  # days the communication-gap rule flags it after its return


@dataclass
class ShortGapFault:
    """SPEC §3b: slots of one day the meter sent nothing for (its other slots carry usable readings)."""

    meter_id: str
    date: str
    missing: list[str]  # the missing slots' starts, in order, consecutive


@dataclass
class SilentMeter:
    meter_id: str
    last_seen: str
    silent_days: int


@dataclass
class QuarantinedRow:
    code: str
    date: str
    key: str
    line: int
    raw_line: str


@dataclass
class ValidationRow:
    kind: str
    date: str
    meter_id: str
    timestamp: str
    key: str
    line: int
    value_raw: str | None
    unit_raw: str | None
    expected: dict  # value_kw, validation_errors, out_of_range, usable, quality_score, quality_grade


@dataclass
class Revision:
    meter_id: str
    date: str
    timestamp: str
    unit: str
    old_value: str
    new_value: str
    old_key: str
    old_line: int
    new_key: str
    new_line: int
    old_record_id: str  # lands in reading_revisions
    new_record_id: str  # the winning reading, flagged REVISED


@dataclass
class Duplicate:
    kind: str  # REDELIVERED (a later file) | REPEATED_IN_FILE (a later line)
    meter_id: str
    date: str
    timestamp: str
    value: str
    unit: str
    record_id: str
    original_key: str
    original_line: int
    copy_key: str  # the copy is the last delivery, so it is the winning row
    copy_line: int


@dataclass
class DeadLetterFile:
    key: str
    date: str
    kind: str
    reason: str


@dataclass
class IgnoredKey:
    key: str
    reason: str


@dataclass
class FormatQuirk:
    key: str
    quirk: str
    detail: str


@dataclass
class Faults:
    stuck: list[StuckFault] = field(default_factory=list)
    spikes: list[SpikeFault] = field(default_factory=list)
    gaps: list[GapFault] = field(default_factory=list)
    silences: list[SilenceFault] = field(default_factory=list)
    short_gaps: list[ShortGapFault] = field(default_factory=list)


@dataclass
class PartitionExpectation:
    date: str
    readings_files: int  # files of the day that are read (not dead letter, not ignored)
    dead_letter_files: int
    data_rows: int  # rows of those files
    placeable_rows: int
    quarantined: dict[str, int]  # code -> rows
    readings: int  # winning readings (distinct interval keys)
    revisions: int  # rows of reading_revisions
    grades: dict[str, int]  # of the winning readings
    stuck_meters: list[str]
    spike_readings: list[dict]  # {"meter_id", "timestamp"}
    gap_meters: list[str]
    # SPEC §3a, with the look-back clipped at the first generated day.
    silent_meters: list[SilentMeter] = field(default_factory=list)  # longest silent first, then id
    known_fleet: int = 0  # meters seen in the look-back
    new_meters: list[str] = field(default_factory=list)
    returning_meters: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.silent_meters = [s if isinstance(s, SilentMeter) else SilentMeter(**s) for s in self.silent_meters]


@dataclass
class Manifest:
    format_version: int
    config: dict
    delivery: str
    partitions_start: str
    days: list[str]
    meters: int
    units: dict[str, int]  # meters per reporting unit
    injected_meter_ids: list[str]  # meters carrying an injection; all others are clean
    totals: dict  # files, rows, bytes
    files: list[FileEntry] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    quarantine: list[QuarantinedRow] = field(default_factory=list)
    validation: list[ValidationRow] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    dead_letters: list[DeadLetterFile] = field(default_factory=list)
    ignored_keys: list[IgnoredKey] = field(default_factory=list)
    format_quirks: list[FormatQuirk] = field(default_factory=list)
    expected: list[PartitionExpectation] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write(self, out: Path) -> Path:
        path = Path(out) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        lists = {"files": FileEntry, "quarantine": QuarantinedRow, "validation": ValidationRow,
                 "revisions": Revision, "duplicates": Duplicate, "dead_letters": DeadLetterFile,
                 "ignored_keys": IgnoredKey, "format_quirks": FormatQuirk,
                 "expected": PartitionExpectation}
        values = dict(data)
        for name, kind in lists.items():
            values[name] = [kind(**item) for item in data.get(name, [])]
        faults = data.get("faults", {})
        values["faults"] = Faults(
            stuck=[StuckFault(**f) for f in faults.get("stuck", [])],
            spikes=[SpikeFault(**f) for f in faults.get("spikes", [])],
            gaps=[GapFault(**f) for f in faults.get("gaps", [])],
            silences=[SilenceFault(**f) for f in faults.get("silences", [])],
            short_gaps=[ShortGapFault(**f) for f in faults.get("short_gaps", [])],
        )
        return cls(**values)

    @classmethod
    def load(cls, out_or_path: Path | str) -> Manifest:
        path = Path(out_or_path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
