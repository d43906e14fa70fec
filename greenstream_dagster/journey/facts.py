"""What is known about one reading's (or quarantined row's) way through the platform (SPEC §9).

Plain, frozen dataclasses: `gather` fills them from PostgreSQL, S3 and the
Dagster instance, `story` turns them into text, `--json` prints them as they
are. A field is None when that fact could not be found (the staging frame was
never written, the Dagster instance is unknown, …); the story says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time

# Roles of the placeable rows of one interval key (SPEC §2).
READING = "READING"  # the winning row: its fields and provenance are the reading's
DELIVERED_AGAIN = "DELIVERED_AGAIN"  # another copy of the winner's record_id
REVISION = "REVISION"  # another record_id of the key, superseded by the winner


@dataclass(frozen=True)
class SourceObject:
    """The landing object a row came from, as the raw step listed it (or as S3 shows it now)."""

    key: str
    size: int | None
    etag: str | None
    last_modified: datetime | None  # the arrival time; it orders deliveries
    seen_by: str  # "raw_readings staging" | "S3 now" | "nobody" (the object is gone)
    dead_letter_reason: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One placeable row of the reading's interval key, in delivery order."""

    source_key: str
    source_line: int
    value_raw: str | None
    unit_raw: str | None
    record_id: str
    role: str  # READING | DELIVERED_AGAIN | REVISION


@dataclass(frozen=True)
class Ingestion:
    source_key: str
    source_line: int
    raw_line: str | None  # None when the raw staging frame is gone
    source: SourceObject
    deliveries: tuple[Delivery, ...] = ()  # empty when the raw staging frame is gone


@dataclass(frozen=True)
class Trigger:
    """The Dagster run whose meter_readings materialization last wrote the row."""

    partition_key: str
    run_id: str | None = None
    unknown_reason: str | None = None  # why run_id is None
    job_name: str | None = None
    status: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    materialized_at: datetime | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    later_run_ids: tuple[str, ...] = ()  # runs of the partition after it that left the row unchanged


@dataclass(frozen=True)
class Revision:
    """A superseded reading of the same interval key (reading_revisions)."""

    record_id: str
    value_raw: str | None
    unit_raw: str | None
    source_key: str
    source_line: int


@dataclass(frozen=True)
class MeterDay:
    """The meter's fault statistics on the partition day (SPEC §3), from the scored staging frame."""

    usable_readings: int
    variance_kw2: float | None
    stuck: bool
    spike_count: int
    missing_rate_7d: float | None
    gap: bool
    reliable: bool


@dataclass(frozen=True)
class RulesInForce:
    """The thresholds the story explains with: today's configuration, not necessarily the run's."""

    min_kw: float
    max_kw: float
    timezone: str
    peak_start: time
    peak_end: time
    hemisphere: str
    stuck_variance_kw2: float
    stuck_min_readings: int
    spike_sigmas: float
    gap_max_missing_rate: float


@dataclass(frozen=True)
class Transformation:
    value_raw: str | None
    unit_raw: str | None
    value_kw: float | None
    tariff_period: str
    season: str
    local_time: datetime  # reading_ts in the configured time zone
    validation_errors: tuple[str, ...]
    out_of_range: bool
    revised: bool
    is_spike: bool
    meter_stuck: bool
    meter_gap: bool
    quality_score: int
    quality_grade: str
    revisions: tuple[Revision, ...]
    meter_day: MeterDay | None  # None when the scored staging frame is gone
    rules: RulesInForce


@dataclass(frozen=True)
class Storage:
    table: str  # meter_readings
    partition_table: str | None
    loaded_at: datetime
    retention_days: int | None = None  # the configured hot window


@dataclass(frozen=True)
class LakeRow:
    value_kw: float | None
    quality_grade: str
    quality_score: int


@dataclass(frozen=True)
class Archival:
    bucket: str
    readings_key: str
    archived_grades: tuple[str, ...]  # grades the lake keeps (A–C)
    readings_day_written: bool
    lake_row: LakeRow | None  # the reading's row in the lake day, if found
    meter_daily_key: str
    meter_daily_written: bool
    meter_daily: dict | None  # the meter's row of lake meter_daily (energy, reliability, grade counts)


@dataclass(frozen=True)
class ReadingJourney:
    record_id: str
    meter_id: str
    reading_ts: datetime
    partition_date: date
    ingestion: Ingestion
    trigger: Trigger
    transformation: Transformation
    storage: Storage
    archival: Archival
    asked_for: str | None = None  # how the question led here, when not straight to the reading
    kind: str = "reading"


@dataclass(frozen=True)
class QuarantineJourney:
    """A row that could not be placed: it stops in rejected_readings (SPEC §2)."""

    partition_date: date
    source_key: str
    source_line: int
    raw_line: str | None
    reason: str
    loaded_at: datetime
    source: SourceObject
    trigger: Trigger
    kind: str = "quarantined"


@dataclass(frozen=True)
class BoundingReading:
    """A usable reading an estimate was interpolated from (a row of meter_readings)."""

    reading_ts: datetime
    value_kw: float | None  # None when the reading is no longer stored (the estimate is then stale)
    record_id: str | None


@dataclass(frozen=True)
class EstimateJourney:
    """A slot the meter sent nothing for, filled by an estimate (SPEC §3b): not a reading."""

    meter_id: str
    slot_ts: datetime
    partition_date: date
    value_kw: float
    method: str
    from_reading: BoundingReading
    to_reading: BoundingReading
    estimated_at: datetime
    table: str
    partition_table: str
    max_estimate_slots: int  # the setting in force now
    bucket: str
    lake_key: str
    lake_value_kw: float | None  # the lake's value for the slot; None when not (yet) archived
    asked_at: datetime | None = None  # the time asked for, when it is not the slot's start
    kind: str = "estimate"


def to_json_dict(journey: ReadingJourney | QuarantineJourney | EstimateJourney) -> dict:
    """The facts as JSON-ready values: times in ISO 8601, tuples as lists."""
    return _plain(dataclasses.asdict(journey))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return value
