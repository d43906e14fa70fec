"""Benchmark of the operational store at the scale of SPEC: one day of 4.8 million readings.

Run:  .venv/bin/python benchmarks/bench_operational.py [--meters 50000]

Uses GREENSTREAM_DATABASE_URL when set, else starts the embedded PostgreSQL in a
temporary folder (removed at the end). Prints the first load, an identical
re-load (must change 0 rows), a re-score of 1 % of the readings and the
retention drop of the loaded day, each with its wall time and the CPU seconds
it took (this process + the embedded server: a figure that does not depend on
what else the machine runs), and the peak RSS of this process.
Targets on a 2-core machine: first load < 60 s, re-load < 30 s, retention < 1 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import psutil
import psycopg

from greenstream_dagster.rules.schemas import REJECTED_COLUMNS, REVISION_COLUMNS, SCORED_COLUMNS, empty_frame
from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.storage.operational.load import DayLoad, load_partition
from greenstream_dagster.storage.operational.migrate import apply_migrations
from greenstream_dagster.storage.operational.partitions import DAY_PARTITIONED_TABLES, partition_name
from greenstream_dagster.storage.operational.retention import apply_retention
from greenstream_dagster.storage.operational.store import OperationalStore

DAY = date(2024, 4, 15)


def scored_day(meters: int, day: date = DAY) -> pl.DataFrame:
    """`meters` × 96 scored readings of one day, built with expressions only."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    frame = (
        pl.DataFrame({"meter": pl.int_range(meters, eager=True, dtype=pl.Int64)})
        .join(pl.DataFrame({"slot": pl.int_range(96, eager=True, dtype=pl.Int64)}), how="cross")
        .with_columns(
            meter_id=pl.format("SM-{}", pl.col("meter") + 10_000),
            reading_ts=pl.lit(start, dtype=pl.Datetime("us", "UTC"))
            + pl.duration(minutes=pl.col("slot") * 15),
            value_kw=((pl.col("meter") * 7 + pl.col("slot") * 13) % 5000).cast(pl.Float64) / 1000,
        )
        .with_columns(value_raw=(pl.col("value_kw") * 1000).cast(pl.Int64).cast(pl.Utf8))
    )
    hour = pl.col("reading_ts").dt.hour()
    score = pl.when(pl.col("slot") % 50 == 0).then(70).otherwise(100).cast(pl.Int32)
    return frame.select(  # the load derives each reading's record_id (SHA-256), as for real scores
        meter_id="meter_id",
        reading_ts="reading_ts",
        partition_date=pl.lit(day),
        value_raw="value_raw",
        unit_raw=pl.lit("W"),
        value_kw="value_kw",
        tariff_period=pl.when((hour >= 17) & (hour < 21)).then(pl.lit("PEAK")).otherwise(pl.lit("OFF_PEAK")),
        season=pl.lit("SPRING"),
        validation_errors=pl.lit([], dtype=pl.List(pl.Utf8)),
        out_of_range=pl.lit(False),
        revised=pl.lit(False),
        is_spike=pl.lit(False),
        meter_stuck=pl.lit(False),
        meter_gap=pl.col("slot") % 50 == 0,
        quality_score=score,
        quality_grade=pl.when(score >= 90).then(pl.lit("A")).otherwise(pl.lit("C")),
        source_key=pl.format("raw-data/{}/batch-{}.csv", pl.lit(day.isoformat()), pl.col("meter") % 24),
        source_line=pl.col("meter") * 96 + pl.col("slot") + 2,
    ).cast(SCORED_COLUMNS)


def rescore(frame: pl.DataFrame, share: float) -> pl.DataFrame:
    """Flip the spike flag and lower the score of one reading in every 1/share."""
    hit = (pl.int_range(pl.len()) % round(1 / share)) == 0
    return frame.with_columns(
        is_spike=pl.when(hit).then(True).otherwise(pl.col("is_spike")),
        quality_score=pl.when(hit).then(pl.lit(90, pl.Int32)).otherwise(pl.col("quality_score")),
    )


class CpuMeter:
    """CPU seconds of this process and, when known, of the PostgreSQL server and its backends."""

    def __init__(self, server_pid: int | None):
        self.server = psutil.Process(server_pid) if server_pid else None

    def read(self) -> tuple[float, float | None]:
        own = psutil.Process().cpu_times()
        client = own.user + own.system
        if self.server is None:
            return client, None
        # Exited backends are counted in the postmaster's children times, live ones on their own.
        t = self.server.cpu_times()
        server = t.user + t.system + t.children_user + t.children_system
        for child in self.server.children():
            try:
                c = child.cpu_times()
                server += c.user + c.system
            except psutil.NoSuchProcess:
                pass
        return client, server

    @contextmanager
    def phase(self, label: str):
        (c0, s0), t0 = self.read(), time.perf_counter()
        note: dict = {}
        yield note
        (c1, s1), wall = self.read(), time.perf_counter() - t0
        cpu = f"client {c1 - c0:.1f}" + (f" + server {s1 - s0:.1f}" if s0 is not None else "")
        print(f"{label:<17}{wall:7.2f} s wall | CPU s: {cpu} | {note.get('what', '')}", flush=True)


def run(database_url: str, meters: int, server_pid: int | None = None) -> None:
    apply_migrations(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:  # a clean day to start from
        for table in DAY_PARTITIONED_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {partition_name(table, DAY)}")
    meter = CpuMeter(server_pid)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    t = time.perf_counter()
    readings = scored_day(meters)
    print(f"built {readings.height:,} scored rows in {time.perf_counter() - t:.1f} s")
    rejected, revisions = empty_frame(REJECTED_COLUMNS), empty_frame(REVISION_COLUMNS)
    store = OperationalStore(database_url)

    with meter.phase("first load") as note:
        r = load_partition(store, DayLoad(DAY, readings, rejected, revisions))
        note["what"] = f"inserted {r.inserted:,} (copy {r.stage_seconds:.1f} s, merge {r.merge_seconds:.1f} s)"
    with meter.phase("identical reload") as note:
        r = load_partition(store, DayLoad(DAY, readings, rejected, revisions))
        note["what"] = f"rows changed {r.changed:,} (copy {r.stage_seconds:.1f} s, merge {r.merge_seconds:.1f} s)"
    rescored = rescore(readings, 0.01)
    with meter.phase("re-score 1 %") as note:
        r = load_partition(store, DayLoad(DAY, rescored, rejected, revisions))
        note["what"] = (f"updated {r.updated:,}, changed {r.changed:,} "
                        f"(copy {r.stage_seconds:.1f} s, merge {r.merge_seconds:.1f} s)")

    # The daily retention job does not run on the heels of three 4.8-million-row loads:
    # their writes are settled first (timed apart), so the drop itself is measured.
    t = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()
    print(f"(checkpoint + sync of the loads' writes: {time.perf_counter() - t:.1f} s, not part of retention)")
    with meter.phase("retention drop") as note:
        dropped = apply_retention(database_url, today=DAY + timedelta(days=91), retention_days=90)
        note["what"] = f"dropped {len(dropped)} day partitions holding {readings.height:,} readings"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the benchmark process: {peak:,.0f} MB; load average {os.getloadavg()[0]:.1f} at end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50_000)
    args = parser.parse_args()
    url = os.environ.get("GREENSTREAM_DATABASE_URL")
    if url:
        run(url, args.meters)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="greenstream-bench-"))
    try:
        server = EmbeddedPostgres(folder / "postgres")
        with server as url:
            run(url, args.meters, server.server_pid)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
