"""`greenstream journey`: where one reading came from and where it went (SPEC §9).

Ask by content id (--record-id, with --date when the day is known), by interval key (--meter and --timestamp) or by
physical line of a landing file (--source-key and --line, which also finds a
quarantined row, a revision or a copy delivered again). Prints a short story in
five chapters — ingestion, trigger, transformation, storage, archival — or, with
--json, the facts behind it. Exits 1 when nothing matches.

The stores are the configured ones (or the embedded servers), as for every
command; the run is looked up in the Dagster instance of DAGSTER_HOME.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timezone

import adbc_driver_manager
import psycopg

from greenstream_dagster.journey import runs
from greenstream_dagster.journey.facts import ReadingJourney, to_json_dict
from greenstream_dagster.journey.gather import (
    JourneyNotFound,
    JourneySources,
    journey_of_interval,
    journey_of_line,
    journey_of_record,
)
from greenstream_dagster.journey.points import points_lost
from greenstream_dagster.journey.story import render
from greenstream_dagster.rules.partition_days import PARTITIONS_START_SETTING, partition_problem
from greenstream_dagster.services.dagster_instance import dagster_storage, needs_storage_url
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import ConfigurationError, load_settings
from greenstream_dagster.storage.s3 import s3_client

PROG = "greenstream journey"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "journey",
        help="show a reading's journey: source line, run, standardization, score, storage and lake file",
        description=__doc__,
    )
    parser.add_argument("--record-id", help="the reading's record_id (64 hex characters)")
    parser.add_argument("--date", help="with --record-id: the reading's partition day YYYY-MM-DD, if known "
                        "(record_id is not indexed; without it the hot days are searched newest first)")
    parser.add_argument("--meter", help="meter_id of the interval key, with --timestamp; alone: the meter's "
                        "registry entry and recent silent days")
    parser.add_argument("--timestamp", help="reading time, ISO 8601 (2024-04-15T18:45:00Z; no offset means UTC)")
    parser.add_argument("--source-key", help="landing object key raw-data/YYYY-MM-DD/…, with --line")
    parser.add_argument("--line", type=int, help="physical line in the decompressed file (the header is line 1)")
    parser.add_argument("--json", action="store_true", help="print the facts as JSON instead of the story")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.meter is not None and args.timestamp is None and args.record_id is None \
            and args.source_key is None and args.line is None and args.date is None:
        return _meter(args)
    question = _question(args)
    if isinstance(question, str):
        print(f"{PROG}: {question}", file=sys.stderr)
        return 2
    settings = load_settings()
    _refuse_day_outside_partitions(args, settings.partitions_start)
    with resolve_services(settings) as services:
        if needs_storage_url(os.environ):
            # The project's dagster.yaml reads its storage from DAGSTER_POSTGRES_URL; found as `greenstream dev` does.
            os.environ["DAGSTER_POSTGRES_URL"] = dagster_storage(services, settings, os.environ)
        instance, problem = runs.open_instance()
        try:
            sources = JourneySources(
                s3=s3_client(services), bucket=services.bucket, database_url=services.database_url,
                rules=settings.rules, instance=instance, instance_problem=problem,
                retention_days=settings.retention_days,
            )
            journey = question(sources)
        except JourneyNotFound as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            return 1
        except psycopg.errors.UndefinedTable:
            print(f"{PROG}: the operational store has no tables yet: nothing has been loaded", file=sys.stderr)
            return 1
        finally:
            if instance is not None:
                instance.dispose()
    if args.json:
        facts = to_json_dict(journey)
        if isinstance(journey, ReadingJourney):
            facts["points_lost"] = [vars(p) for p in points_lost(journey.transformation)]
        print(json.dumps(facts, indent=2, ensure_ascii=False))
    else:
        print(render(journey), end="")
    return 0


def _meter(args) -> int:
    """The fleet's view of one meter (SPEC §3a): its registry entry and recent silent days."""
    from greenstream_dagster.journey.meter_story import meter_facts, render_meter

    with resolve_services(load_settings()) as services:
        try:
            facts = meter_facts(services.database_url, args.meter.strip())
        except (psycopg.errors.UndefinedTable, adbc_driver_manager.ProgrammingError):
            facts = None  # no fleet tables yet: nothing materialized
    if facts is None:
        print(f"{PROG}: meter {args.meter.strip()!r} is not in the registry (no placeable row on a "
              "materialized day)", file=sys.stderr)
        return 1
    print(json.dumps(facts, indent=2) if args.json else render_meter(facts), end="\n" if args.json else "")
    return 0


def _refuse_day_outside_partitions(args, start: date) -> None:
    """A day the partitions do not have holds no reading: say so in one line naming the setting
    (main prints a ConfigurationError that way), rather than searching the stores for nothing."""
    day = args.date
    if args.timestamp is not None:
        day = parse_timestamp(args.timestamp).date().isoformat()
    elif args.source_key is not None:
        day = date_folder_day(args.source_key.strip())
    problem = partition_problem(day, start) if day else None
    if problem is not None:
        raise ConfigurationError(PARTITIONS_START_SETTING, problem)


def date_folder_day(key: str) -> str | None:
    """YYYY-MM-DD of a landing key raw-data/YYYY-MM-DD/…, as written (None for another key)."""
    parts = key.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "raw-data" else None


def _question(args):
    """A function of the sources that answers the question asked, or the usage problem as text."""
    by_record = args.record_id is not None
    by_interval = args.meter is not None or args.timestamp is not None
    by_line = args.source_key is not None or args.line is not None
    if by_record + by_interval + by_line != 1:
        return "ask exactly one way: --record-id, or --meter with --timestamp, or --source-key with --line"
    if by_record:
        record_id = args.record_id.strip().lower()
        if len(record_id) != 64 or any(c not in "0123456789abcdef" for c in record_id):
            return f"--record-id must be 64 hex characters (a SHA-256), got {args.record_id!r}"
        try:
            day = date.fromisoformat(args.date) if args.date else None
        except ValueError:
            return f"--date: expected YYYY-MM-DD, got {args.date!r}"
        return lambda sources: journey_of_record(sources, record_id, day)
    if args.date is not None:
        return "--date goes with --record-id (the other questions name their day already)"
    if by_interval:
        if args.meter is None or args.timestamp is None:
            return "--meter and --timestamp go together"
        try:
            reading_ts = parse_timestamp(args.timestamp)
        except ValueError:
            return f"--timestamp: expected ISO 8601 such as 2024-04-15T18:45:00Z, got {args.timestamp!r}"
        return lambda sources: journey_of_interval(sources, args.meter.strip(), reading_ts)
    if args.source_key is None or args.line is None:
        return "--source-key and --line go together"
    if args.line < 2:
        return f"--line: data starts at line 2 (line 1 is the header), got {args.line}"
    return lambda sources: journey_of_line(sources, args.source_key.strip(), args.line)


def parse_timestamp(text: str) -> datetime:
    """ISO 8601; no offset means UTC, as in the landing files (SPEC §2)."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
