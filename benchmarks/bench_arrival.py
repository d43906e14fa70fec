"""Benchmark of the run queue under continuous arrival, as deployed: `dagster dev` (daemon,
sensor, run queue of our dagster.yaml) on the embedded S3 and PostgreSQL, files landing all day.

    python benchmarks/bench_arrival.py [--meters 50000] [--minutes 10] [--every 5] [--out benchmarks/output/arrival]

Two days of the generator's data, yesterday and the day before. The day before
lands whole, at once: its one run is the reference (a full-day run, with the
history the other day then has). Then yesterday's readings land as head-end
files — each file all readings of a group of meters — one every `--every`
seconds for `--minutes` minutes. Sampled every second from Dagster's run
storage, and printed at the end:

- runs of the day started, and the longest queue (runs of the day waiting at once);
- compute: the runs' summed wall time against the reference run (goal ≤ 3×);
- latency from each file's upload to the end of the first run that started
  after it (the first that could list it): median, 95th percentile, maximum;
- readings of the day in PostgreSQL at the end against the rows uploaded;
- where each day's compute went: its steps' seconds (`seconds_total` of each materialization),
  summed over its runs.

Prints figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
from bench_rules import read_day  # this folder: the day's local files read as the platform reads them

ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
DAY_TAG = "greenstream/day"


def generate(out: Path, meters: int, start: date) -> Path:
    data = out / f"data-{start}"
    if not (data / "manifest.json").exists():
        subprocess.run(
            [sys.executable, "-m", "greenstream_dagster.cli", "generate", "--out", str(data), "--meters", str(meters),
             "--days", "2", "--start", start.isoformat(), "--faults", "default", "--overwrite"],
            check=True,
        )
    return data


def head_end_files(data: Path, day: date, count: int) -> list[tuple[str, bytes, int]]:
    """The day's rows regrouped into `count` files by meter (a head-end uploads its meters' day).

    The rows are taken as the platform reads them (every dialect the generator writes), as
    text; the generator's unreadable files (dead letters) are left out."""
    rows = read_day(data, day).rows
    rows = rows.filter(pl.col("field_count_ok")).select("meter_id", "timestamp", "value", "unit").with_columns(
        (pl.col("meter_id").fill_null("").hash(seed=7) % count).alias("_file"))
    files = []
    for k, part in sorted(rows.partition_by("_file", as_dict=True).items()):
        buffer = io.BytesIO()
        part.drop("_file").write_csv(buffer)
        files.append((f"raw-data/{day.isoformat()}/head-end-{k[0]:04d}.csv", buffer.getvalue(), part.height))
    return files


def graphql_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
            return True
    except OSError:
        return False


def runs_of(instance, day: str) -> list:
    return [r for r in instance.get_run_records() if r.dagster_run.tags.get(DAY_TAG) == day]


def settle_seconds() -> float:
    """How long no new run of a day must start before its runs count as settled: longer than the
    longest a day waits for its next run (the spacing cap, then the sensor's next tick)."""
    from greenstream_dagster.settings import load_settings

    settings = load_settings()
    return settings.day_run_spacing_seconds + 2 * settings.sensor_interval_seconds + 15


def wait_settled(instance, day: str, quiet: float = 60, timeout: float = 1800) -> list:
    deadline, quiet_since, seen = time.monotonic() + timeout, time.monotonic(), -1
    while time.monotonic() < deadline:
        records = runs_of(instance, day)
        active = [r for r in records if r.dagster_run.status.value in ACTIVE]
        if active or len(records) != seen:
            quiet_since, seen = time.monotonic(), len(records)
        elif time.monotonic() - quiet_since > quiet:
            return records
        time.sleep(2)
    raise SystemExit(f"runs of {day} did not settle in {timeout:.0f} s")


def step_seconds(instance, day: str) -> str:
    """The day's step seconds per asset summed over its materializations, largest first; the
    PostgreSQL load also split into staging and its transaction."""
    import dagster as dg

    from greenstream_dagster.asset_names import INGEST_ASSETS

    totals: dict[str, float] = {}
    for asset in INGEST_ASSETS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1000).records
        for record in records:
            metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            for name, key in ((asset, "seconds_total"), (f"{asset}: stage", "seconds_stage_copy"),
                              (f"{asset}: transaction", "seconds_merge")):
                if isinstance(metadata.get(key), (int, float)):
                    totals[name] = totals.get(name, 0.0) + metadata[key]
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(totals.items(), key=lambda x: -x[1]))


def wall(record) -> float:
    return (record.end_time or time.time()) - (record.start_time or record.create_timestamp.timestamp())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=5, help="seconds between two uploads")
    parser.add_argument("--port", type=int, default=3300)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/output/arrival"))
    args = parser.parse_args()
    out = args.out.resolve()
    today = datetime.now(timezone.utc).date()
    reference_day, day = today - timedelta(days=2), today - timedelta(days=1)
    data = generate(out, args.meters, reference_day)
    count = max(1, int(args.minutes * 60 / args.every))
    files = head_end_files(data, day, count)
    state = out / f"state-{int(time.time())}"  # a fresh platform each time: no runs or cursor from before
    os.environ.update({"GREENSTREAM_DATA_DIR": str(state), "GREENSTREAM_PARTITIONS_START": reference_day.isoformat()})

    from greenstream_dagster.services.dagster_instance import PROJECT_ROOT, dagster_environment
    from greenstream_dagster.services.runtime import resolve_services
    from greenstream_dagster.settings import load_settings
    from greenstream_dagster.storage.s3 import s3_client

    settings = load_settings()
    with resolve_services(settings) as services:
        env = {**os.environ, **services.environment()}
        env.update(dagster_environment(services, settings, env))
        os.environ.update(env)
        client = s3_client(services)
        # The reference day lands before the platform starts, so the sensor's first look sees it whole.
        folder = data / "raw-data" / reference_day.isoformat()
        landed = sorted(p for p in folder.rglob("*") if p.is_file())
        for path in landed:
            client.upload_file(str(path), services.bucket, f"raw-data/{path.relative_to(folder.parent).as_posix()}")
        log = state / "dagster-dev.log"
        dev = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(args.port)],
            env=env, cwd=PROJECT_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not graphql_up(args.port):
                if dev.poll() is not None:
                    raise SystemExit(f"dagster dev ended; see {log}")
                time.sleep(2)
            import dagster as dg

            instance = dg.DagsterInstance.get()
            size = sum(p.stat().st_size for p in landed) / 1e6
            print(f"reference day {reference_day}: {len(landed)} files, {size:.1f} MB landed at once")
            reference = [r for r in wait_settled(instance, reference_day.isoformat())
                         if r.dagster_run.status.value == "SUCCESS"]
            reference_seconds = sum(wall(r) for r in reference)  # one run: the day was whole at the first look
            print(f"  its run: {reference_seconds:.1f} s ({len(reference)} run(s))")
            print(f"  steps (s): {step_seconds(instance, reference_day.isoformat())}")
            # The next day starts on a machine as quiet as the reference did: the reference's
            # writes (gigabytes of WAL, partition and staging) are on disk, not flushed meanwhile.
            os.sync()

            print(f"day {day}: {len(files)} head-end files, {sum(len(b) for _, b, _ in files) / 1e6:.1f} MB, "
                  f"one every {args.every:g} s")
            uploads, longest_queue, started = [], 0, time.monotonic()
            for k, (key, body, _) in enumerate(files):
                while time.monotonic() < started + k * args.every:
                    queued = sum(r.dagster_run.status.value in ("QUEUED", "NOT_STARTED")
                                 for r in runs_of(instance, day.isoformat()))
                    longest_queue = max(longest_queue, queued)
                    time.sleep(1)
                client.put_object(Bucket=services.bucket, Key=key, Body=body)
                uploads.append(time.time())
            last_upload = time.time()
            records = wait_settled(instance, day.isoformat(), quiet=settle_seconds())
            runs = sorted(records, key=lambda r: r.start_time or 0)
            compute = sum(wall(r) for r in runs)
            latencies = []
            for at in uploads:
                after = [r for r in runs if r.start_time and r.start_time >= at and r.end_time]
                latencies.append((after[0].end_time - at) if after else float("nan"))
            failed = [r.dagster_run.run_id for r in runs if r.dagster_run.status.value != "SUCCESS"]
            import psycopg

            with psycopg.connect(services.database_url) as conn:
                stored = conn.execute("SELECT count(*) FROM meter_readings WHERE partition_date = %s",
                                      (day,)).fetchone()[0]
            print(f"  runs started: {len(runs)} ({len(failed)} not successful), longest queue: {longest_queue}")
            print(f"  compute: {compute:.0f} s = {compute / reference_seconds:.1f} × the reference run")
            finite = sorted(x for x in latencies if x == x)
            print(f"  upload → readings in PostgreSQL: median {statistics.median(finite):.0f} s, "
                  f"p95 {finite[int(0.95 * (len(finite) - 1))]:.0f} s, max {finite[-1]:.0f} s"
                  + (f" ({len(latencies) - len(finite)} file(s) never followed by a run)" if len(finite) < len(latencies) else ""))
            print(f"  last upload → last run's end: {max(r.end_time for r in runs) - last_upload:.0f} s")
            print(f"  readings stored: {stored:,} of {sum(n for _, _, n in files):,} rows uploaded")
            print(f"  steps (s): {step_seconds(instance, day.isoformat())}")
        finally:
            os.killpg(dev.pid, signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
