"""Benchmark of a full day as deployed: the ingest job's eight assets for one day of 50,000 meters,
with six days of history, through the real Dagster path on the embedded S3 and PostgreSQL.

    python benchmarks/bench_day.py [--meters 50000] [--days 7] [--out benchmarks/output/day]

What runs is what a user runs: `dagster asset materialize` (a fresh process, our
code location, the Dagster instance of our dagster.yaml with its storage in
PostgreSQL) for each day. Days D-6..D-1 are materialized once and kept between
invocations (the history); day D is then cleared (its staging, lake objects and
operational partitions) and timed:

1. **first run of day D**: wall time of the command, then a breakdown read back
   from the run's events — process start (command start → run start), each
   step's wall time split into the stages its materialization reports
   (`seconds_*` metadata), what lies outside them (validation, events), and
   process exit.
2. **re-run after a late file** of about 1 % of the day (revised values for
   1 % of the meters, uploaded as a new object): wall time, the same
   breakdown, and what it wrote to PostgreSQL.
3. **re-run with nothing new**: wall time and rows written.

Prints figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import polars as pl

START = date(2024, 4, 9)
INGEST = ("raw_readings", "standardized_readings", "scored_readings", "meter_readings",
          "lake_readings", "lake_meter_daily", "meter_registry", "silent_meters")
OPERATIONAL_TABLES = ("meter_readings", "rejected_readings", "reading_revisions")


def generate(out: Path, meters: int, days: int) -> Path:
    data = out / "data"
    if not (data / "manifest.json").exists():
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "greenstream_dagster.cli", "generate", "--out", str(data), "--meters", str(meters),
             "--days", str(days), "--start", START.isoformat(), "--faults", "default", "--overwrite"],
            check=True,
        )
        print(f"generated {meters:,} meters × {days} days in {time.perf_counter() - started:.1f} s")
    return data


def materialize(env: dict[str, str], day: date, log: Path) -> float:
    """One `dagster asset materialize` of the ingest assets for `day`; returns its wall seconds."""
    return materialize_measured(env, day, log)[0]


def materialize_measured(env: dict[str, str], day: date, log: Path) -> tuple[float, float]:
    """The same; returns its wall seconds and the peak RSS in GB of the largest process of its
    tree (the run process and, with the multiprocess executor, its step processes)."""
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "greenstream_dagster.definitions",
               "--select", ",".join(INGEST), "--partition", day.isoformat()]
    started = time.perf_counter()
    with log.open("a") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"materialize {day} failed (exit {process.returncode}); see {log}")
    return seconds, usage.ru_maxrss / 1024**2


def clear_day(client, bucket: str, database_url: str, day: date) -> None:
    """Forget day D everywhere but the landing zone, so its next run is a first run."""
    import psycopg

    from greenstream_dagster.storage.operational.partitions import partition_name

    prefixes = [f"staging/{asset}/date={day.isoformat()}/" for asset in INGEST]
    prefixes += [f"analytics/{table}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}/"
                 for table in ("readings", "meter_daily", "silent_meters")]
    for prefix in prefixes:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in OPERATIONAL_TABLES:
            conn.execute(f'DROP TABLE IF EXISTS "{partition_name(table, day)}"')
        conn.execute("DELETE FROM day_loads WHERE partition_date = %s", (day,))


def late_file(data: Path, day: date, share: float = 0.01) -> bytes:
    """A new object of about `share` of the day: later readings (value + 1 kW) for that share of the meters."""
    frames = [pl.read_csv(path, infer_schema=False) for path in sorted((data / "raw-data" / day.isoformat()).rglob("*.csv*"))
              if path.suffix == ".csv"]
    day_rows = pl.concat(frames, how="diagonal_relaxed")
    meters = day_rows["meter_id"].unique().sort()
    chosen = meters.head(max(1, int(len(meters) * share)))
    revised = (day_rows.filter(pl.col("meter_id").is_in(chosen.implode()))
               .with_columns((pl.col("value").cast(pl.Float64, strict=False) + 1).round(4).cast(pl.Utf8).alias("value"))
               .filter(pl.col("value").is_not_null()))
    buffer = io.BytesIO()
    revised.select("meter_id", "timestamp", "value", "unit").write_csv(buffer)
    return buffer.getvalue()


def breakdown(instance, started_at: float, wall: float) -> tuple[str, dict[str, float]]:
    """The latest run's time, step by step, from its events."""
    import dagster as dg

    run = instance.get_runs(limit=1)[0]
    records = instance.get_records_for_run(run.run_id).records
    entries = [r.event_log_entry for r in records]
    run_start = next(e.timestamp for e in entries if e.dagster_event and e.dagster_event_type == dg.DagsterEventType.RUN_START)
    run_end = next(e.timestamp for e in entries if e.dagster_event and e.dagster_event_type in
                   (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE))
    steps: dict[str, dict] = {}
    for e in entries:
        event = e.dagster_event
        if event is None or not e.step_key:
            continue
        step = steps.setdefault(e.step_key, {"stages": {}})
        if event.event_type == dg.DagsterEventType.STEP_START:
            step["start"] = e.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            step["end"] = e.timestamp
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            metadata = event.step_materialization_data.materialization.metadata
            for name, value in metadata.items():
                if name.startswith("seconds_") and name != "seconds_total":
                    step["stages"][name.removeprefix("seconds_")] = float(value.value)
                elif name == "process_peak_rss_mb":
                    step["rss"] = float(value.value) / 1024
    lines = [f"  {'step':<34}{'seconds':>8}{'peak GB':>9}  stages (seconds)"]
    totals = {"process start": run_start - started_at}
    for key, step in sorted(steps.items(), key=lambda kv: kv[1].get("start", 0)):
        seconds = step.get("end", run_end) - step.get("start", run_start)
        stages = step["stages"]
        described = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        rss = f"{step['rss']:9.2f}" if "rss" in step else " " * 9
        if "." in key:  # the last op of a graph-backed asset: its stages are those of all the asset's steps
            described = f"(the asset's steps) {described}" if described else ""
        else:
            outside = seconds - sum(v for k, v in stages.items() if k not in ("stage_copy", "merge"))
            described = f"{described}{'; ' if described else ''}other {outside:.2f}"
        lines.append(f"  {key:<34}{seconds:8.2f}{rss}  {described}")
        totals[key] = seconds
    totals["process exit"] = started_at + wall - run_end
    lines.append(f"  {'process start (command → run start)':<34}{totals['process start']:8.2f}")
    lines.append(f"  {'between steps (Dagster)':<34}{(run_end - run_start) - sum(totals[k] for k in steps):8.2f}")
    lines.append(f"  {'process exit (run end → exit)':<34}{totals['process exit']:8.2f}")
    return "\n".join(lines), totals


def written_rows(instance) -> str:
    import dagster as dg

    run = instance.get_runs(limit=1)[0]
    for record in instance.get_records_for_run(run.run_id).records:
        event = record.event_log_entry.dagster_event
        if event and event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION \
                and event.asset_key == dg.AssetKey("meter_readings"):
            m = {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
            return (f"PostgreSQL: inserted {m.get('inserted', 0):,}, updated {m.get('updated', 0):,}, "
                    f"deleted {m.get('deleted', 0):,}, unchanged {m.get('unchanged', 0):,}; "
                    f"readings copied {m.get('readings_copied', 0):,}")
    return "PostgreSQL: meter_readings not materialized"


@contextmanager
def prepared_history(out: Path, meters: int, days: int):
    """The embedded services with the generated data uploaded and days D-6..D-1 materialized
    (each once, kept between invocations under `out`); yields (services, env, client, data, day D)."""
    data = generate(out, meters, days)
    last = START + timedelta(days=days - 1)
    os.environ.update({"GREENSTREAM_DATA_DIR": str(out / "state"), "GREENSTREAM_PARTITIONS_START": START.isoformat()})
    from greenstream_dagster.services.dagster_instance import dagster_environment
    from greenstream_dagster.services.runtime import resolve_services
    from greenstream_dagster.settings import load_settings
    from greenstream_dagster.storage.s3 import s3_client
    from greenstream_dagster.upload_command import upload_folder

    settings = load_settings()
    log = out / "runs.log"
    with resolve_services(settings) as services:
        env = {**os.environ, **services.environment()}
        env.update(dagster_environment(services, settings, env))
        os.environ.update(env)
        client = s3_client(services)
        marker = out / "state" / ".uploaded"
        if not marker.exists():
            result = upload_folder(client, services.bucket, data / "raw-data")
            marker.touch()
            print(f"uploaded {result.files} files, {result.bytes / 1e6:.1f} MB")
        for k in range(days - 1):
            day = START + timedelta(days=k)
            done = out / "state" / f".history-{day}"
            if not done.exists():
                seconds = materialize(env, day, log)
                done.touch()
                print(f"history {day}: {seconds:.1f} s", flush=True)
        yield services, env, client, data, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/output/day"))
    args = parser.parse_args()
    args.out = args.out.resolve()
    log = args.out / "runs.log"
    with prepared_history(args.out, args.meters, args.days) as (services, env, client, data, last):
        import dagster as dg

        instance = dg.DagsterInstance.get()
        late_key = f"raw-data/{last.isoformat()}/late/late-1pct.csv"
        client.delete_object(Bucket=services.bucket, Key=late_key)
        clear_day(client, services.bucket, services.database_url, last)
        csv_bytes = sum(p.stat().st_size for p in (data / "raw-data" / last.isoformat()).rglob("*") if p.is_file())
        print(f"\nday {last}: {args.meters:,} meters, {csv_bytes / 1e6:.1f} MB of CSV, six days of history\n")

        for title, prepare in (
            ("first run of the day", None),
            ("re-run after a late file of ~1 % of the day", "late"),
            ("re-run, nothing new", None),
        ):
            if prepare == "late":
                body = late_file(data, last)
                client.put_object(Bucket=services.bucket, Key=late_key, Body=body)
                rows = body.count(b"\n") - 1
                title += f" ({len(body) / 1e6:.2f} MB, {rows:,} rows)"
            wall = materialize(env, last, log)
            table, _ = breakdown(instance, time.time() - wall, wall)
            print(f"{title}: {wall:.1f} s end-to-end")
            print(table)
            print(f"  {written_rows(instance)}\n")
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        print(f"peak RSS of one run process: {children:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
