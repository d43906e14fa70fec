"""Gather a journey's facts from the stores: PostgreSQL, the S3 staging frames and lake, Dagster.

PostgreSQL is the authority on what was stored (meter_readings, reading_revisions,
rejected_readings). The staging frames add what PostgreSQL does not keep — the
raw line text, every delivery of the interval, the object's arrival time and the
meter's fault statistics — and the lake and the Dagster instance are checked for
the reading's last two chapters. Everything but PostgreSQL may be missing; the
facts then say so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import psycopg

from greenstream_dagster.asset_names import RAW, SCORED
from greenstream_dagster.journey import runs
from greenstream_dagster.journey.content_id import content_id, record_id_text
from greenstream_dagster.journey.facts import (
    DELIVERED_AGAIN,
    READING,
    REVISION,
    Archival,
    BoundingReading,
    Delivery,
    EstimateJourney,
    Ingestion,
    LakeRow,
    MeterDay,
    QuarantineJourney,
    ReadingJourney,
    Revision,
    RulesInForce,
    SourceObject,
    Storage,
    Transformation,
)
from greenstream_dagster.journey.parquet_rows import rows_where
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.interval_key import delivery_rank
from greenstream_dagster.rules.landing_key import IgnoredKey, parse_landing_key
from greenstream_dagster.rules.placement import with_placement
from greenstream_dagster.rules.quality_score import LAKE_GRADES
from greenstream_dagster.storage import lake, staging
from greenstream_dagster.storage.operational import queries
from greenstream_dagster.storage.operational.partitions import list_day_partitions
from greenstream_dagster.storage.operational.store import OperationalStore


class JourneyNotFound(LookupError):
    """No stored reading or quarantined row matches the question; the message says what was searched."""


@dataclass(frozen=True)
class JourneySources:
    """Where the facts are: the bucket (staging, lake, landing), the operational store, Dagster."""

    s3: Any  # a boto3 S3 client
    bucket: str
    database_url: str
    rules: RulesConfig
    instance: Any = None  # a DagsterInstance, or None when unknown
    instance_problem: str | None = None  # why there is no instance
    retention_days: int | None = None  # the operational store's hot window, as configured


def journey_of_record(sources: JourneySources, record_id_: str, day: date | None = None) -> ReadingJourney:
    """The reading with this record_id; a superseded record_id leads to the reading that replaced it.

    record_id is not indexed, so without `day` the hot days are searched one
    partition at a time, newest first: a recent reading is found after a scan
    of a day or two, not of the whole store.
    """
    record_id_ = record_id_.strip().lower()
    for candidate in [day] if day is not None else _hot_days_newest_first(sources.database_url):
        row = queries.fetch_reading_by_record_id(sources.database_url, record_id_, candidate)
        if row is not None:
            return _reading_journey(sources, row)
    revision = queries.fetch_revision_by_record_id(sources.database_url, record_id_)
    if revision is not None:
        row = queries.fetch_reading(sources.database_url, revision["meter_id"], revision["reading_ts"])
        if row is not None:
            return _reading_journey(sources, row, asked_for=(
                f"Asked for record_id {record_id_} ({revision['value_raw']} {revision['unit_raw']}, line "
                f"{revision['source_line']} of {revision['source_key']}): a revision, superseded by this reading."))
    where = f"partition {day}" if day is not None else "any partition"
    raise JourneyNotFound(f"no reading with record_id {record_id_} in meter_readings or reading_revisions ({where})")


def _hot_days_newest_first(database_url: str) -> list[date]:
    with OperationalStore(database_url).connect() as conn:
        return sorted(list_day_partitions(conn, "meter_readings"), reverse=True)


def journey_of_interval(sources: JourneySources, meter_id: str,
                        reading_ts: datetime) -> ReadingJourney | EstimateJourney:
    """The reading of the interval key; without one, the estimate of its slot (SPEC §3b), if any."""
    row = queries.fetch_reading(sources.database_url, meter_id, reading_ts)
    if row is None:
        estimate = _estimate_journey(sources, meter_id, reading_ts)
        if estimate is not None:
            return estimate
        raise JourneyNotFound(
            f"no reading of {meter_id} at {_utc_text(reading_ts)} in meter_readings (partition "
            f"{reading_ts.astimezone(timezone.utc).date()}); a quarantined row is found by "
            "--source-key and --line")
    return _reading_journey(sources, row)


def _estimate_journey(sources: JourneySources, meter_id: str, moment: datetime) -> EstimateJourney | None:
    moment = moment.astimezone(timezone.utc)
    slot_ts = moment - timedelta(minutes=moment.minute % 15, seconds=moment.second, microseconds=moment.microsecond)
    try:
        row = queries.fetch_estimate(sources.database_url, meter_id, slot_ts)
    except psycopg.errors.UndefinedTable:  # a store migrated before §3b
        return None
    if row is None:
        return None
    day = row["partition_date"]

    def bound(ts: datetime) -> BoundingReading:
        reading = queries.fetch_reading(sources.database_url, meter_id, ts)
        return BoundingReading(reading_ts=ts.astimezone(timezone.utc),
                               value_kw=reading["value_kw"] if reading else None,
                               record_id=reading["record_id"] if reading else None)

    key = lake.lake_day_key("estimated", day)
    archived = rows_where(sources.s3, sources.bucket, key, "meter_id", meter_id)
    lake_value = None
    if archived is not None:
        match = archived.filter(pl.col("slot_ts") == slot_ts)
        lake_value = match["value_kw"][0] if match.height else None
    return EstimateJourney(
        meter_id=meter_id, slot_ts=slot_ts, partition_date=day, value_kw=row["value_kw"], method=row["method"],
        from_reading=bound(row["from_reading_ts"]), to_reading=bound(row["to_reading_ts"]),
        estimated_at=row["estimated_at"], table="estimated_readings", partition_table=row["partition_table"],
        max_estimate_slots=sources.rules.max_estimate_slots, bucket=sources.bucket, lake_key=key,
        lake_value_kw=lake_value, asked_at=moment if moment != slot_ts else None,
    )


def journey_of_line(sources: JourneySources, source_key: str, source_line: int) -> ReadingJourney | QuarantineJourney:
    """Whatever became of one physical line of a landing file: quarantined, the reading, a revision or a copy."""
    try:
        day = parse_landing_key(source_key).partition_date
    except IgnoredKey as reason:
        raise JourneyNotFound(f"{reason}: the platform ignores this key") from None
    db = sources.database_url
    rejected = queries.fetch_rejected(db, source_key, source_line, day)
    if rejected is not None:
        return QuarantineJourney(
            partition_date=day, source_key=source_key, source_line=source_line,
            raw_line=rejected["raw_line"], reason=rejected["reason"], loaded_at=rejected["loaded_at"],
            source=_source_object(sources, day, source_key),
            trigger=_trigger(sources, day, rejected["loaded_at"]),
        )
    row = queries.fetch_row_by_source(db, "meter_readings", source_key, source_line, day)
    if row is not None:
        return _reading_journey(sources, row)
    revision = queries.fetch_row_by_source(db, "reading_revisions", source_key, source_line, day)
    if revision is not None:
        winner = queries.fetch_reading(db, revision["meter_id"], revision["reading_ts"])
        if winner is not None:
            return _reading_journey(sources, winner, asked_for=(
                f"Asked for line {source_line} of {source_key} ({revision['value_raw']} {revision['unit_raw']}, "
                f"record_id {revision['record_id']}): a revision, superseded by this reading."))
    copy = _placed_raw_line(sources, day, source_key, source_line)
    if copy is not None:
        winner = queries.fetch_reading(db, copy["meter_id"], copy["reading_ts"])
        if winner is not None:
            return _reading_journey(sources, winner, asked_for=(
                f"Asked for line {source_line} of {source_key}: the same reading delivered again."))
    source = _source_object(sources, day, source_key)
    if source.dead_letter_reason:
        raise JourneyNotFound(f"{source_key} went whole to the dead letter store ({source.dead_letter_reason}); "
                              "none of its lines was read")
    raise JourneyNotFound(f"line {source_line} of {source_key} is neither quarantined, nor a stored reading, "
                          f"nor a revision in partition {day}")


def _reading_journey(sources: JourneySources, row: dict, asked_for: str | None = None) -> ReadingJourney:
    meter_id, day = row["meter_id"], row["partition_date"]
    reading_ts = row["reading_ts"].astimezone(timezone.utc)
    raw = rows_where(sources.s3, sources.bucket, staging.staging_key(RAW, day, "rows"), "meter_id", meter_id)
    return ReadingJourney(
        record_id=row["record_id"], meter_id=meter_id, reading_ts=reading_ts, partition_date=day,
        ingestion=_ingestion(sources, row, raw),
        trigger=_trigger(sources, day, row["loaded_at"]),
        transformation=_transformation(sources, row, reading_ts),
        storage=Storage(
            table="meter_readings",
            partition_table=queries.fetch_partition_table(sources.database_url, meter_id, reading_ts),
            loaded_at=row["loaded_at"],
            retention_days=sources.retention_days,
        ),
        archival=_archival(sources, meter_id, reading_ts, day),
        asked_for=asked_for,
    )


def _ingestion(sources: JourneySources, row: dict, raw: pl.DataFrame | None) -> Ingestion:
    key, line, day = row["source_key"], row["source_line"], row["partition_date"]
    raw_line, deliveries = None, ()
    if raw is not None:
        own = raw.filter((pl.col("source_key") == key) & (pl.col("source_line") == line))
        raw_line = own["raw_line"][0] if own.height else None
        deliveries = _deliveries(raw, day, row)
    return Ingestion(source_key=key, source_line=line, raw_line=raw_line,
                     source=_source_object(sources, day, key), deliveries=deliveries)


def _deliveries(raw: pl.DataFrame, day: date, row: dict) -> tuple[Delivery, ...]:
    """The interval's placeable rows in delivery order, placed by the same rules as the platform."""
    placed = _placed(raw, day).filter(pl.col("reading_ts") == row["reading_ts"].astimezone(timezone.utc))
    if placed.is_empty():
        return ()
    ordered = delivery_rank(placed.lazy()).sort("delivery_rank").collect()
    out = []
    for copy in ordered.iter_rows(named=True):
        if (copy["source_key"], copy["source_line"]) == (row["source_key"], row["source_line"]):
            role = READING
        elif copy["record_id"] == row["record_id"]:
            role = DELIVERED_AGAIN
        else:
            role = REVISION
        out.append(Delivery(source_key=copy["source_key"], source_line=copy["source_line"],
                            value_raw=copy["value"], unit_raw=copy["unit"], record_id=copy["record_id"], role=role))
    return tuple(out)


def _placed(raw: pl.DataFrame, day: date) -> pl.DataFrame:
    """Placeable raw rows with reading_ts and record_id (SPEC §2); a handful of rows, one meter's."""
    placed = with_placement(raw.lazy(), day).filter(pl.col("reason").is_null()).collect()
    ids = [content_id(record_id_text(m, ts, v))
           for m, ts, v in placed.select("meter_id", "reading_ts", "value").iter_rows()]
    return placed.with_columns(pl.Series("record_id", ids, dtype=pl.Utf8))


def _placed_raw_line(sources: JourneySources, day: date, source_key: str, source_line: int) -> dict | None:
    raw = rows_where(sources.s3, sources.bucket, staging.staging_key(RAW, day, "rows"), "source_key", source_key)
    if raw is None:
        return None
    placed = _placed(raw.filter(pl.col("source_line") == source_line), day)
    return placed.row(0, named=True) if placed.height else None


def _source_object(sources: JourneySources, day: date, key: str) -> SourceObject:
    """The object as the raw step listed it; failing that, as S3 shows it now."""
    files = staging.read_frame(sources.s3, sources.bucket, RAW, day, "files")
    if files is not None:
        match = files.filter(pl.col("key") == key)
        if match.height:
            f = match.row(0, named=True)
            return SourceObject(key=key, size=f["size"], etag=f["etag"], last_modified=f["last_modified"],
                                seen_by="raw_readings staging", dead_letter_reason=f["dead_letter_reason"])
    try:
        head = sources.s3.head_object(Bucket=sources.bucket, Key=key)
    except sources.s3.exceptions.ClientError:
        return SourceObject(key=key, size=None, etag=None, last_modified=None, seen_by="nobody")
    return SourceObject(key=key, size=head["ContentLength"], etag=head["ETag"].strip('"'),
                        last_modified=head["LastModified"].astimezone(timezone.utc), seen_by="S3 now")


def _trigger(sources: JourneySources, day: date, loaded_at: datetime):
    return runs.find_trigger(sources.instance, day.isoformat(), loaded_at, sources.instance_problem)


def _transformation(sources: JourneySources, row: dict, reading_ts: datetime) -> Transformation:
    rules = sources.rules
    revisions = queries.fetch_revisions(sources.database_url, row["meter_id"], reading_ts)
    return Transformation(
        value_raw=row["value_raw"], unit_raw=row["unit_raw"], value_kw=row["value_kw"],
        tariff_period=row["tariff_period"], season=row["season"],
        local_time=reading_ts.astimezone(ZoneInfo(rules.timezone)),
        validation_errors=tuple(row["validation_errors"]), out_of_range=row["out_of_range"],
        revised=row["revised"], is_spike=row["is_spike"], meter_stuck=row["meter_stuck"],
        meter_gap=row["meter_gap"], quality_score=row["quality_score"], quality_grade=row["quality_grade"],
        revisions=tuple(
            Revision(record_id=r["record_id"], value_raw=r["value_raw"], unit_raw=r["unit_raw"],
                     source_key=r["source_key"], source_line=r["source_line"])
            for r in revisions
        ),
        meter_day=_meter_day(sources, row["meter_id"], row["partition_date"]),
        rules=RulesInForce(
            min_kw=rules.min_kw, max_kw=rules.max_kw, timezone=rules.timezone, peak_start=rules.peak_start,
            peak_end=rules.peak_end, hemisphere=rules.hemisphere, stuck_variance_kw2=rules.stuck_variance_kw2,
            stuck_min_readings=rules.stuck_min_readings, spike_sigmas=rules.spike_sigmas,
            gap_max_missing_rate=rules.gap_max_missing_rate,
        ),
    )


def _meter_day(sources: JourneySources, meter_id: str, day: date) -> MeterDay | None:
    meters = rows_where(sources.s3, sources.bucket, staging.staging_key(SCORED, day, "meters"), "meter_id", meter_id)
    if meters is None or meters.is_empty():
        return None
    m = meters.row(0, named=True)
    return MeterDay(usable_readings=m["usable_readings"], variance_kw2=m["variance_kw2"], stuck=m["stuck"],
                    spike_count=m["spike_count"], missing_rate_7d=m["missing_rate_7d"], gap=m["gap"],
                    reliable=m["reliable"])


def _archival(sources: JourneySources, meter_id: str, reading_ts: datetime, day: date) -> Archival:
    readings_key, daily_key = lake.lake_day_key("readings", day), lake.lake_day_key("meter_daily", day)
    readings = rows_where(sources.s3, sources.bucket, readings_key, "meter_id", meter_id)
    lake_row = None
    if readings is not None:
        match = readings.filter(pl.col("reading_ts") == reading_ts)
        if match.height:
            r = match.row(0, named=True)
            lake_row = LakeRow(value_kw=r["value_kw"], quality_grade=r["quality_grade"], quality_score=r["quality_score"])
    daily = rows_where(sources.s3, sources.bucket, daily_key, "meter_id", meter_id)
    daily_row = None
    if daily is not None and daily.height:
        daily_row = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in daily.row(0, named=True).items()}
    return Archival(
        bucket=sources.bucket, readings_key=readings_key, archived_grades=tuple(LAKE_GRADES),
        readings_day_written=readings is not None, lake_row=lake_row,
        meter_daily_key=daily_key, meter_daily_written=daily is not None, meter_daily=daily_row,
    )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
