"""Time the fleet steps (SPEC §3a) add to a 50,000-meter day: the registry and the silent meters.

The embedded PostgreSQL (or GREENSTREAM_DATABASE_URL) first holds 30 days of presence of the
fleet (a look-back's worth, recorded day by day as the registry step would); then day D, on
which 1 % of the meters are silent, is timed step by step, first run and re-run. The lake
snapshot is encoded but not uploaded (an S3 PUT of ~1 MB is the same whatever the fleet does).

    python benchmarks/bench_fleet.py [--meters 50000]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from greenstream_dagster.rules.meter_registry import day_presence
from greenstream_dagster.rules.silent_meters import fleet_day, silent_meters
from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.storage.operational.fleet import (
    fetch_lookback,
    fetch_registry,
    record_day_presence,
    store_silent_meters,
)
from greenstream_dagster.storage.operational.migrate import apply_migrations

DAY = date(2024, 5, 31)
LOOKBACK = 30


def meter_stats(meters: list[str], day: date) -> pl.DataFrame:
    last = datetime(day.year, day.month, day.day, 23, 45, tzinfo=timezone.utc)
    return pl.DataFrame({"meter_id": meters, "partition_date": [day] * len(meters),
                         "last_reading_ts": [last] * len(meters)})


@contextmanager
def timed(label: str, totals: dict):
    start = time.perf_counter()
    note: dict = {}
    yield note
    seconds = time.perf_counter() - start
    totals[label] = seconds
    print(f"  {label:<34}{seconds:6.3f} s  {note.get('what', '')}", flush=True)


def day_d(url: str, meters: list[str], run: str) -> float:
    print(f"day {DAY} ({run}):")
    totals: dict = {}
    today = [m for i, m in enumerate(meters) if i % 100 != 7]  # 1 % silent
    with timed("registry: presence from meter_stats", totals):
        presence = day_presence(meter_stats(today, DAY), DAY)
    with timed("registry: record presence + merge", totals) as note:
        update = record_day_presence(url, DAY, presence)
        note["what"] = f"{update.meters_on_day:,} meters, {update.changed:,} rows changed"
    with timed("registry: lake snapshot (encode)", totals) as note:
        registry = fetch_registry(url)
        buffer = io.BytesIO()
        registry.write_parquet(buffer, compression="snappy")
        note["what"] = f"{registry.height:,} meters, {len(buffer.getvalue()):,} bytes"
    with timed("silent: read look-back", totals):
        stored = fetch_lookback(url, DAY, LOOKBACK, DAY - timedelta(days=LOOKBACK))
    with timed("silent: rule + fleet numbers", totals) as note:
        silent = silent_meters(stored.last_seen.lazy(), stored.day_meters.lazy(), DAY, LOOKBACK)
        fleet = fleet_day(stored.last_seen.lazy(), stored.day_meters.lazy(), silent, stored.new_meters.lazy(),
                          DAY, LOOKBACK)
        note["what"] = f"{fleet.silent:,} silent of {fleet.known_fleet:,}"
    with timed("silent: store silent_meters", totals) as note:
        note["what"] = f"{store_silent_meters(url, DAY, silent):,} rows changed"
    total = sum(totals.values())
    print(f"  {'total added to the day':<34}{total:6.3f} s")
    return total


def run(url: str, count: int) -> None:
    apply_migrations(url)
    meters = [f"SM-{10_000_000 + i}" for i in range(count)]
    start = time.perf_counter()
    for k in range(LOOKBACK, 0, -1):
        day = DAY - timedelta(days=k)
        record_day_presence(url, day, day_presence(meter_stats(meters, day), day))
    print(f"{LOOKBACK} look-back days of {count:,} meters recorded in {time.perf_counter() - start:.1f} s")
    day_d(url, meters, "first run")
    day_d(url, meters, "re-run, nothing changed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50_000)
    args = parser.parse_args()
    url = os.environ.get("GREENSTREAM_DATABASE_URL")
    if url:
        run(url, args.meters)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="greenstream-bench-fleet-"))
    try:
        with EmbeddedPostgres(folder / "postgres") as url:
            run(url, args.meters)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
