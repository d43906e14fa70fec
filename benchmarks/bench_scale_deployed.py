"""Part (a) of bench_scale.py: a day of a large fleet as deployed, with 1 and with 2 workers (SPEC §10).

    python benchmarks/bench_scale.py --deployed --meters 250000 [--data /work/scale-data] [--out FOLDER]

What runs is bench_day.py's path (a fresh `dagster asset materialize` of the ingest
job's eight assets, our code location and dagster.yaml, the embedded S3 and
PostgreSQL): days D-6..D-1 are materialized once and kept; day D is then cleared
and run twice on the multiprocess executor (each step, every parse batch and every
shard among them, a process of its own), with 1 and then 2 steps at once (the
workers). Printed for each: wall time, seconds per million readings, the step
breakdown with each asset's largest step process (its `process_peak_rss_mb`), and
the peak RSS of the run process (wait4 of the command); at the end, the peak RSS
of the PostgreSQL and SeaweedFS processes (their VmHWM). (On the in-process
executor, the default, one process runs every step, so its peak is the largest
step's plus what the allocator kept of the steps before.) `--meters 50000` measures the
baseline the other sizes are compared with (kept in `deployed-50000.json`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import bench_day

BASELINE_METERS = 50_000
TARGET_PEAK_GB = 4.0
DAYS = 7  # D-6..D: the fault window of day D
# A worker is a step process: the multiprocess executor with one, then two steps at once.
EXECUTORS = {workers: {"GREENSTREAM_EXECUTOR": "multiprocess", "GREENSTREAM_MAX_CONCURRENT_STEPS": str(workers)}
             for workers in (1, 2)}


def day_readings(instance) -> int:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey("scored_readings"))
    return int(event.asset_materialization.metadata["readings"].value)


def step_peak_gb(instance) -> float:
    """The largest step process of the latest run: each asset reports the largest of its steps."""
    import dagster as dg

    run = instance.get_runs(limit=1)[0]
    peaks = [0.0]
    for record in instance.get_records_for_run(run.run_id).records:
        event = record.event_log_entry.dagster_event
        if event and event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            metadata = event.step_materialization_data.materialization.metadata
            if "process_peak_rss_mb" in metadata:
                peaks.append(float(metadata["process_peak_rss_mb"].value) / 1024)
    return max(peaks)


def service_peaks_gb() -> dict[str, float]:
    """The largest VmHWM (peak RSS) among the running postgres and weed processes."""
    peaks: dict[str, float] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        name = fields.get("Name", "").strip()
        if name in ("postgres", "weed") and "VmHWM" in fields:
            peaks[name] = max(peaks.get(name, 0.0), int(fields["VmHWM"].split()[0]) / 1024**2)
    return peaks


def run(meters: int, data: Path, out: Path | None = None) -> int:
    out = (out or data / f"deployed-{meters}").resolve()
    summary_file = data / f"deployed-{meters}.json"
    log = out / "runs.log"
    with bench_day.prepared_history(out, meters, DAYS) as (services, env, client, landing, last):
        import dagster as dg

        # The history days' CSV is in the bucket now; the local copy of day D is all a rerun needs.
        for folder in (landing / "raw-data").glob("2*"):
            if folder.is_dir() and folder.name != last.isoformat():
                shutil.rmtree(folder)
        instance = dg.DagsterInstance.get()
        csv_bytes = sum(p.stat().st_size for p in (landing / "raw-data" / last.isoformat()).rglob("*") if p.is_file())
        print(f"\nday {last}: {meters:,} meters, {csv_bytes / 1e6:.1f} MB of CSV, six days of history\n")
        figures = {}
        for workers, executor in EXECUTORS.items():
            bench_day.clear_day(client, services.bucket, services.database_url, last)
            load = os.getloadavg()[0]
            wall, peak = bench_day.materialize_measured({**env, **executor}, last, log)
            table, _ = bench_day.breakdown(instance, time.time() - wall, wall)
            readings = day_readings(instance)
            per_million = wall / (readings / 1e6)
            figures[workers] = {"seconds": round(wall, 1), "readings": readings, "peak_gb": round(peak, 2),
                                "seconds_per_million_readings": round(per_million, 2), "load_average": load}
            steps_peak = step_peak_gb(instance)
            figures[workers]["step_peak_gb"] = round(steps_peak, 2)
            print(f"{workers} worker{'s' if workers > 1 else ''}: {wall:.1f} s end-to-end, {readings:,} readings, "
                  f"{per_million:.2f} s per million readings, largest step process {steps_peak:.2f} GB, "
                  f"run process {peak:.2f} GB (load average before {load:.1f})")
            print(table + "\n")
        services_peak = service_peaks_gb()
    summary_file.write_text(json.dumps({"meters": meters, "runs": figures, "services_peak_gb": services_peak}, indent=2))
    print("services (peak RSS of the largest process): "
          + ", ".join(f"{name} {gb:.2f} GB" for name, gb in sorted(services_peak.items())))
    peak = max(max(f["peak_gb"], f["step_peak_gb"]) for f in figures.values())
    print(f"largest run or step process {peak:.2f} GB (target ≤ {TARGET_PEAK_GB:.0f} GB): "
          f"{'met' if peak <= TARGET_PEAK_GB else 'NOT met'}")
    baseline_file = data / f"deployed-{BASELINE_METERS}.json"
    if meters != BASELINE_METERS and baseline_file.exists():
        base = json.loads(baseline_file.read_text())["runs"]["1"]
        for workers, f in figures.items():
            ratio = f["seconds_per_million_readings"] / base["seconds_per_million_readings"]
            print(f"{workers} worker(s): {f['seconds_per_million_readings']:.2f} s per million readings = {ratio:.2f} × "
                  f"the {BASELINE_METERS:,}-meter day's {base['seconds_per_million_readings']:.2f} (1 worker; target ≤ 1): "
                  f"{'met' if ratio <= 1 else 'NOT met'}")
    return 0
