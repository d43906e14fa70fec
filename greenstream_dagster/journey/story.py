"""The journey as a short story in five chapters: ingestion, trigger, transformation, storage, archival.

Pure: facts in, text out. Nothing here reads a store, so every sentence can be
tested from a hand-built `ReadingJourney` or `QuarantineJourney`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from greenstream_dagster.journey.content_id import content_id, record_id_text
from greenstream_dagster.journey.facts import (
    DELIVERED_AGAIN,
    READING,
    REVISION,
    Delivery,
    EstimateJourney,
    QuarantineJourney,
    ReadingJourney,
    SourceObject,
    Transformation,
    Trigger,
)
from greenstream_dagster.journey.numbers import decimal_text, unit_factor
from greenstream_dagster.journey.points import MAX_SCORE, grade_band, points_lost
from greenstream_dagster.rules.values import UNIT_EXPONENTS

CHAPTERS = ("Ingestion", "Trigger", "Transformation", "Storage", "Archival")
INDENT = "   "

# Sensor and schedule runs carry these tags (dagster._core.storage.tags); a run key
# `raw-<day>-<digest>` is the raw_file_sensor's (rules.landing_scan).
SENSOR_NAME_TAG = "dagster/sensor_name"
SCHEDULE_NAME_TAG = "dagster/schedule_name"
BACKFILL_TAG = "dagster/backfill"
RUN_KEY_TAG = "dagster/run_key"
LANDING_DIGEST_TAG = "greenstream/landing_digest"

QUARANTINE_EXPLANATIONS = {
    "MALFORMED_ROW": "its field count differs from the header's",
    "MISSING_METER_ID": "meter_id is empty",
    "INVALID_METER_ID": "meter_id does not match ^SM-[0-9]{1,12}$ (case-sensitive)",
    "MISSING_TIMESTAMP": "timestamp is empty",
    "INVALID_TIMESTAMP": "timestamp is not YYYY-MM-DD(T| )HH:MM:SS(.fraction)?(Z|±HH:MM)? or not a real date and time",
    "TIMESTAMP_OUTSIDE_PARTITION": "its UTC date is not the date folder's day",
}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_ROLES = {READING: "the reading (last delivered)", DELIVERED_AGAIN: "the same reading delivered again",
          REVISION: "a revision, superseded"}


def render(journey: ReadingJourney | QuarantineJourney | EstimateJourney) -> str:
    if isinstance(journey, QuarantineJourney):
        return render_quarantine(journey)
    if isinstance(journey, EstimateJourney):
        return render_estimate(journey)
    return render_reading(journey)


def render_reading(j: ReadingJourney) -> str:
    title = f"The journey of reading {j.meter_id} at {utc(j.reading_ts)} (partition {j.partition_date})"
    lines = [title, "=" * len(title), f"record_id {j.record_id}"]
    if j.asked_for:
        lines.append(j.asked_for)
    chapters = [
        _ingestion(j),
        _trigger(j.trigger, "meter_readings"),
        _transformation(j),
        _storage(j),
        _archival(j),
    ]
    return _with_chapters(lines, chapters)


def render_quarantine(q: QuarantineJourney) -> str:
    title = f"The journey of quarantined line {q.source_line} of {q.source_key} (partition {q.partition_date})"
    lines = [title, "=" * len(title)]
    explanation = QUARANTINE_EXPLANATIONS.get(q.reason, "see SPEC §2")
    chapters = [
        [_line_of_object(q.source_line, q.source, q.raw_line), *_object_sentences(q.source)],
        _trigger(q.trigger, "meter_readings (with the partition's quarantine)"),
        [f"Quarantined as {q.reason}: {explanation}.",
         "A row that cannot be placed on an interval is not standardized and not scored (SPEC §2)."],
        [f"PostgreSQL rejected_readings, partition day {q.partition_date}, loaded at {utc(q.loaded_at)}, "
         f"reason {q.reason}."],
        ["Not archived: quarantined rows live only in rejected_readings, never in the data lake."],
    ]
    return _with_chapters(lines, chapters)


def render_estimate(e: EstimateJourney) -> str:
    """An estimate is no reading: what was missing, how it was filled and from which two readings."""
    title = f"Slot {e.meter_id} at {utc(e.slot_ts)} (partition {e.partition_date}) is an ESTIMATE, not a reading"
    lines = [title, "=" * len(title)]
    if e.asked_at is not None:
        lines.append(f"Asked for {utc(e.asked_at)}: no reading there; its 15-minute slot starts {utc(e.slot_ts)}.")

    def reading(b) -> str:
        value = "no longer stored" if b.value_kw is None else f"{decimal_text(b.value_kw)} kW"
        return f"the reading at {utc(b.reading_ts)} ({value}{f', record_id {b.record_id}' if b.record_id else ''})"

    lake_value = ("not archived yet (lake_meter_daily not materialized for the partition)" if e.lake_value_kw is None
                  else f"holds it ({decimal_text(e.lake_value_kw)} kW)")
    body = [
        f"The meter sent no placeable row for this slot; it lies in a short gap run bounded by usable readings "
        f"(SPEC §3b; runs of at most {e.max_estimate_slots} slots are estimated now).",
        f"Estimated by {e.method} interpolation at the slot start between {reading(e.from_reading)} "
        f"and {reading(e.to_reading)}: {decimal_text(e.value_kw)} kW, rounded half to even to 4 places.",
        "Estimates are kept apart from the readings: not in meter_readings, the fault statistics or the grades; "
        "withdrawn when a reading for the slot arrives, re-computed when a bounding reading changes.",
        f"Stored in PostgreSQL {e.table}, table partition {e.partition_table}, estimated at {utc(e.estimated_at)}.",
        f"Lake: s3://{e.bucket}/{e.lake_key} {lake_value}.",
    ]
    return "\n".join([*lines, "", *body]) + "\n"


def _with_chapters(lines: list[str], chapters: list[list[str]]) -> str:
    for number, (name, body) in enumerate(zip(CHAPTERS, chapters), start=1):
        lines += ["", f"{number}. {name}", *(INDENT + sentence for sentence in body)]
    return "\n".join(lines) + "\n"


# 1. Ingestion -----------------------------------------------------------------

def _ingestion(j: ReadingJourney) -> list[str]:
    ing = j.ingestion
    body = [_line_of_object(ing.source_line, ing.source, ing.raw_line), *_object_sentences(ing.source)]
    if len(ing.deliveries) > 1:
        body.append(f"The interval {j.meter_id} {utc(j.reading_ts)} was delivered {len(ing.deliveries)} times, "
                    "in delivery order (last-modified, key, line):")
        body += [INDENT + _delivery(d) for d in ing.deliveries]
    elif not ing.deliveries and ing.raw_line is None:
        body.append("(The raw_readings staging frame of the day is gone, so other deliveries are not shown.)")
    return body


def _line_of_object(line: int, source: SourceObject, raw_line: str | None) -> str:
    text = f"Line {line} of {source.key}"
    if raw_line is None:
        return text + " (its text is no longer in the raw staging frame)."
    return text + ":\n" + INDENT * 2 + raw_line


def _object_sentences(source: SourceObject) -> list[str]:
    if source.seen_by == "nobody":
        return ["The object is no longer in the landing zone and the raw staging frame is gone: "
                "its arrival time is unknown."]
    where = "as the raw step listed it" if source.seen_by == "raw_readings staging" else "as S3 shows it now"
    size = f"{source.size:,} bytes" if source.size is not None else "size unknown"
    sentences = [f"The object arrived at {utc(source.last_modified)} (last-modified, {where}); "
                 f"ETag {source.etag}, {size}."]
    if source.dead_letter_reason:
        sentences.append(f"It was sent to the dead letter store: {source.dead_letter_reason}.")
    return sentences


def _delivery(d: Delivery) -> str:
    value = " ".join(part for part in (d.value_raw or "(no value)", d.unit_raw or "(no unit)"))
    return f"- line {d.source_line} of {d.source_key}: {value} — {_ROLES.get(d.role, d.role)}"


# 2. Trigger -------------------------------------------------------------------

def _trigger(t: Trigger, asset: str) -> list[str]:
    if t.run_id is None:
        return [f"The run is unknown: {t.unknown_reason}."]
    body = [f"{run_origin(t.tags)} run {t.run_id} of job {t.job_name or 'unknown'}."]
    timing = []
    if t.started_at is not None:
        timing.append(f"It started at {utc(t.started_at)}")
    if t.status:
        timing.append(f"ended {t.status}" + (f" at {utc(t.ended_at)}" if t.ended_at else ""))
    if timing:
        body.append(", ".join(timing) + ".")
    if t.materialized_at is not None:
        body.append(f"It materialized {asset} for partition {t.partition_key} at {utc(t.materialized_at)}, "
                    "writing this row.")
    if t.later_run_ids:
        body.append(f"Later runs of the partition found the row unchanged: {', '.join(t.later_run_ids)}.")
    return body


def run_origin(tags: dict[str, str]) -> str:
    """Who asked for the run, read from its tags."""
    run_key = tags.get(RUN_KEY_TAG)
    key = f" (run key {run_key})" if run_key else ""
    if SENSOR_NAME_TAG in tags:
        return f"Sensor {tags[SENSOR_NAME_TAG]}{key} requested"
    if SCHEDULE_NAME_TAG in tags:
        return f"Schedule {tags[SCHEDULE_NAME_TAG]}{key} requested"
    if BACKFILL_TAG in tags:
        return f"Backfill {tags[BACKFILL_TAG]} launched"
    if run_key and run_key.startswith("raw-"):
        return f"The raw_file_sensor{key} requested"
    if LANDING_DIGEST_TAG in tags:
        return f"A run with the sensor's landing tags (digest {tags[LANDING_DIGEST_TAG]}), launched by hand, was"
    return "A run launched by hand (launchpad, CLI or a script):"


# 3. Transformation ------------------------------------------------------------

def _transformation(j: ReadingJourney) -> list[str]:
    t = j.transformation
    body = [f"Value: {conversion(t)}", f"Content id: {record_id_sentence(j)}", f"Enrichment: {_enrichment(t)}"]
    if t.revisions:
        body.append(f"Revisions: this reading superseded {len(t.revisions)} other value"
                    f"{'s' if len(t.revisions) > 1 else ''} of the interval (reading_revisions):")
        body += [INDENT + f"- {r.value_raw or '(no value)'} {r.unit_raw or '(no unit)'} from line {r.source_line} "
                 f"of {r.source_key}, record_id {r.record_id}" for r in t.revisions]
    else:
        body.append("Revisions: none; no other value was delivered for this interval.")
    errors = ", ".join(t.validation_errors) if t.validation_errors else "none"
    body.append(f"Flags: validation_errors {errors} · out_of_range {_yes(t.out_of_range)} · revised {_yes(t.revised)} · "
                f"is_spike {_yes(t.is_spike)} · meter_stuck {_yes(t.meter_stuck)} · meter_gap {_yes(t.meter_gap)}")
    lost = points_lost(t)
    if lost:
        body.append("Points lost (SPEC §4):")
        body += [INDENT + f"- −{p.points} {p.rule}: {p.why}" for p in lost]
    else:
        body.append("Points lost: none.")
    arithmetic = " − ".join([str(MAX_SCORE), *(str(p.points) for p in lost)])
    explained = MAX_SCORE - sum(p.points for p in lost)
    grade = f"grade {t.quality_grade} ({grade_band(t.quality_grade)})"
    if explained == t.quality_score:
        sum_text = f"{arithmetic} = {t.quality_score}" if lost else f"{MAX_SCORE}, nothing lost"
        body.append(f"Score: {sum_text} → {grade}.")
    else:
        body.append(f"Score: {arithmetic} = {explained} by today's rules, but the stored score is "
                    f"{t.quality_score} → {grade}: the partition was scored under another configuration.")
    return body


def conversion(t: Transformation) -> str:
    """`3250 W × 0.001 → 3.25 kW`, or why there is no value_kw (SPEC §2)."""
    value, unit = t.value_raw, t.unit_raw
    if value is None and unit is None:
        return "value and unit missing → no value_kw."
    if value is None:
        return f"value missing (unit {unit}) → no value_kw."
    if unit is None:
        return f"{value} with no unit → no value_kw."
    factor = unit_factor(unit)
    problems = []
    if "INVALID_VALUE" in t.validation_errors:
        problems.append(f"{value!r} is not a decimal number")
    if factor is None:
        problems.append(f"unit {unit!r} is not allowed (only {', '.join(UNIT_EXPONENTS)})")
    if problems or t.value_kw is None:
        return f"{value} {unit}: {'; '.join(problems) or 'not convertible'} → no value_kw."
    text = f"{value} {unit} × {factor} → {decimal_text(t.value_kw)} kW (rounded half to even to 4 decimals)"
    if t.out_of_range:
        text += f", outside the physical range {decimal_text(t.rules.min_kw)}–{decimal_text(t.rules.max_kw)} kW"
    return text + "."


def record_id_sentence(j: ReadingJourney) -> str:
    text = record_id_text(j.meter_id, j.reading_ts, j.transformation.value_raw)
    digest = content_id(text)
    check = "matches" if digest == j.record_id else f"differs from the stored {j.record_id}"
    return f'record_id = sha256("{text}") = {digest} ({check}).'


def _enrichment(t: Transformation) -> str:
    rules, local = t.rules, t.local_time
    window = f"{rules.peak_start.strftime('%H:%M')}–{rules.peak_end.strftime('%H:%M')}"
    inside = "inside" if t.tariff_period == "PEAK" else "outside"
    return (f"in {rules.timezone} the reading is at {local.strftime('%Y-%m-%d %H:%M')} local time, "
            f"{inside} the peak window {window} → {t.tariff_period}; {_MONTHS[local.month - 1]} in the "
            f"{rules.hemisphere}ern hemisphere → {t.season}.")


# 4. Storage -------------------------------------------------------------------

def _storage(j: ReadingJourney) -> list[str]:
    s = j.storage
    partition = s.partition_table or f"the {j.partition_date} partition"
    kept = (f"retention drops the whole day partition {s.retention_days} days after the day"
            if s.retention_days is not None else "retention drops the whole day partition when it expires")
    return [f"PostgreSQL {s.table}, table partition {partition}, loaded at {utc(s.loaded_at)}, "
            f"one row per interval key (meter_id, reading_ts); {kept}."]


# 5. Archival ------------------------------------------------------------------

def _archival(j: ReadingJourney) -> list[str]:
    a, grade = j.archival, j.transformation.quality_grade
    grades = "–".join((a.archived_grades[0], a.archived_grades[-1])) if a.archived_grades else "none"
    readings = f"s3://{a.bucket}/{a.readings_key}"
    if grade not in a.archived_grades:
        body = [f"Not archived: grade {grade} is below the lake's grades {grades} (SPEC §5); the reading stays "
                f"in PostgreSQL only. The day's lake file is {readings}."]
    elif not a.readings_day_written:
        body = [f"Graded {grade}, so it belongs in {readings}, but that lake day has not been written yet "
                "(lake_readings not materialized for the partition)."]
    elif a.lake_row is None:
        body = [f"Graded {grade}, but {readings} holds no row for {j.meter_id} at {utc(j.reading_ts)}: "
                "the lake day predates the latest scoring; re-materialize lake_readings for the partition."]
    else:
        row = a.lake_row
        value = "no value" if row.value_kw is None else f"{decimal_text(row.value_kw)} kW"
        body = [f"Archived (grade {grade} is within {grades}): {readings} holds the row "
                f"({value}, score {row.quality_score}, grade {row.quality_grade})."]
    daily = f"s3://{a.bucket}/{a.meter_daily_key}"
    if not a.meter_daily_written:
        body.append(f"The meter's day summary belongs in {daily}, not written yet.")
    elif a.meter_daily is None:
        body.append(f"The meter's day summary file is {daily} (no row for {j.meter_id} in it).")
    else:
        d = a.meter_daily
        body.append(f"The meter's day summary is in {daily}: {d.get('readings')} readings, "
                    f"{d.get('usable_readings')} usable, {_number(d.get('energy_kwh'))} kWh, "
                    f"{'reliable' if d.get('reliable') else 'not reliable'}, mean score {_number(d.get('mean_score'))}.")
    return body


# Formatting -------------------------------------------------------------------

def utc(moment: datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _number(value) -> str:
    return "unknown" if value is None else f"{value:,.3f}".rstrip("0").rstrip(".")
