"""Benchmark of a day split into meter shards (SPEC §10): (a) as deployed, (b) the rules path in child processes.

    python benchmarks/bench_scale.py --deployed --meters 250000   (a: bench_scale_deployed.py says how)
    python benchmarks/bench_scale.py --rules --meters 1000000 [--workers 2] [--meters-per-shard 50000]
        [--batch-mb 256] [--data /work/scale-data] [--check] [--clean]

The shape is the platform's, with this script as the engine placing the processes
(the platform gives that job to Dagster's executors):

1. parse: the day's landing files, in key order, are cut into batches by size
   (`parse_batches`); a process per batch reads its files once
   (`read_landing_partition`) and routes their rows to the shards (`route`),
   one Parquet part per (batch, shard) on local disk;
2. shards: a process per shard reads its parts, standardizes, scores with its
   meters' history (the meter-day statistics of D-6..D-1, only its meters') and
   makes meter_daily; it writes its results as Parquet.

Every process reports its own peak RSS and CPU time (getrusage of itself), and a
fresh process runs each batch or shard, so a peak is one task's. The days
D-6..D-1 go through the same two phases first (standardize only, keeping the
meter-day statistics, as earlier runs would have); they are printed apart and
are not part of day D's figures.

The data is the project's generator's (`--faults default`, 1,000 meters a file,
in a child process of its own), made once under `--data/meters-N` and reused;
the intermediate parts are removed after each day, `--clean` removes the whole
folder at the end. `--check` also computes the day in one process (and its
history) and says whether the shards' results put together are the same rows.
Day D's totals are kept in `meters-N/day-summary.json`; the 50,000-meter
day's (this script at `--meters 50000`: one shard) is the baseline the other
sizes are compared with. The days D-6..D-1 of an earlier run, split the same
way, are reused.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_partition import LandingPartition, read_landing_partition
from greenstream_dagster.rules.meter_daily import meter_daily
from greenstream_dagster.rules.meter_shards import DEFAULT_METERS_PER_SHARD, meter_shard, parse_batches, route, shard_count
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster.rules.standardize import standardize

START = date(2024, 4, 9)
DAYS = 7  # D-6..D: the fault window of the last day
CONFIG = RulesConfig(partitions_start=START)
# Local scratch, written and read once: speed over size.
COMPRESSION = "lz4"
DAY_RESULTS = ("readings", "meters", "estimates", "meter_daily", "rejected", "revisions", "meter_stats")
BASELINE_METERS = 50_000
TARGET_PEAK_GB, TARGET_RATIO = 4.0, 20.0
SUMMARY = "day-summary.json"  # day D's totals, beside the data: the 50,000-meter one is the others' baseline


# -- where things are -------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """The folders of one fleet size: the generated landing zone and each day's work."""

    root: Path

    def day(self, day: date) -> Path:
        return self.root / "work" / day.isoformat()

    def parts(self, day: date, shard: int) -> Path:
        return self.day(day) / "parts" / f"shard-{shard:04d}"

    def results(self, day: date, shard: int) -> Path:
        return self.day(day) / "results" / f"shard-{shard:04d}"

    def files(self, day: date) -> Path:
        """What each parse batch did with each object (read, dead letter, ignored)."""
        return self.day(day) / "files"

    def one_process(self) -> Path:
        return self.root / "work" / "one-process"


def landing_objects(root: Path, day: date) -> list[LandingObject]:
    """The day's folder as a listing would give it: key order, sizes, modification times."""
    folder = root / "raw-data" / day.isoformat()
    return [
        LandingObject(key=str(path.relative_to(root)), size=path.stat().st_size, etag="",
                      last_modified=datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
        for path in sorted(folder.rglob("*")) if path.is_file()
    ]


def read_files(root: Path, objects: Sequence[LandingObject], day: date) -> LandingPartition:
    return read_landing_partition(list(objects), day, lambda key: (root / key).read_bytes())


def file_outcomes(partition: LandingPartition) -> pl.DataFrame:
    """One row per object: read, dead_letter or ignored, with the reason."""
    rows = ([(o.key, "read", None) for o in partition.files]
            + [(o.key, "dead_letter", reason) for o, reason in partition.dead_letters]
            + [(key, "ignored", reason) for key, reason in partition.ignored])
    return pl.DataFrame(rows, schema={"key": pl.Utf8, "outcome": pl.Utf8, "reason": pl.Utf8}, orient="row")


def write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression=COMPRESSION)


# -- what a child process does ----------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One child process: its rows, wall and CPU seconds, peak RSS and the seconds of its stages."""

    rows: int
    seconds: float
    cpu_seconds: float
    peak_gb: float
    stages: dict[str, float] = field(default_factory=dict)


class Stages:
    """Seconds per named stage of a task, in order."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def measured(task: Callable[[object, Stages], int], job: object) -> Report:
    """Run `task` in this (fresh) process and report what it cost this process, import time included."""
    started, stages = time.perf_counter(), Stages()
    rows = task(job, stages)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Report(rows=rows, seconds=time.perf_counter() - started, cpu_seconds=usage.ru_utime + usage.ru_stime,
                  peak_gb=usage.ru_maxrss / 1024**2, stages=stages.seconds)


@dataclass(frozen=True)
class ParseJob:
    layout: Layout
    day: date
    batch: int
    objects: tuple[LandingObject, ...]
    shards: int


def parse_batch(job: ParseJob, stages: Stages) -> int:
    """Read the batch's objects once and write each shard its rows (an empty part too, so none is missing)."""
    partition = read_files(job.layout.root, job.objects, job.day)
    write(file_outcomes(partition), job.layout.files(job.day) / f"batch-{job.batch:04d}.parquet")
    rows = partition.rows
    del partition
    stages.done("read CSV")
    for shard, part in route(rows, job.shards).items():
        write(part, job.layout.parts(job.day, shard) / f"batch-{job.batch:04d}.parquet")
    stages.done("route + write parts")
    return rows.height


@dataclass(frozen=True)
class ShardJob:
    layout: Layout
    day: date
    shard: int
    shards: int
    score: bool  # day D; a history day is standardized only


def shard_history(layout: Layout, day: date, shard: int, shards: int) -> pl.LazyFrame | None:
    """The meter-day statistics of D-6..D-1 of this shard's meters.

    A history day split the same way gives its file of this shard only: reading every
    shard's file would make each shard read the whole fleet's history (a cost per shard
    that grows with the fleet; 1.2 CPU s a shard at 1,000,000 meters against 0.01 s).
    A day split otherwise (the fleet grew) gives all its files. Either way the rows are
    selected by meter_shard, so the choice of files never decides which meters count.
    """
    paths = []
    for d in (day - timedelta(days=k) for k in range(1, DAYS)):
        files = stats_files(layout, d)
        paths += [layout.results(d, shard) / "meter_stats.parquet"] if len(files) == shards else files
    if not paths:
        return None
    return pl.scan_parquet(paths).filter(meter_shard(shards) == shard)


def stats_files(layout: Layout, day: date) -> list[Path]:
    """A standardized day's meter-day statistics, a file per shard it was split into."""
    return sorted((layout.day(day) / "results").glob("shard-*/meter_stats.parquet"))


def shard_day(job: ShardJob, stages: Stages) -> int:
    """One shard of a day: its parts → standardized (and on day D scored, with meter_daily) → Parquet."""
    rows = pl.read_parquet(sorted(job.layout.parts(job.day, job.shard).glob("batch-*.parquet")))
    stages.done("read parts")
    standardized = standardize(rows, job.day, CONFIG)
    del rows
    stages.done("standardize")
    results = {"meter_stats": standardized.meter_stats, "rejected": standardized.rejected,
               "revisions": standardized.revisions}
    if job.score:
        history = shard_history(job.layout, job.day, job.shard, job.shards)
        scored = score_partition(standardized.readings, job.day, CONFIG, history)
        stages.done("score (7-day window)")
        results |= {"readings": scored.readings, "meters": scored.meters, "estimates": scored.estimates,
                    "meter_daily": meter_daily(scored.readings, scored.meters, job.day, scored.estimates)}
        stages.done("meter_daily")
    for name, frame in results.items():
        write(frame, job.layout.results(job.day, job.shard) / f"{name}.parquet")
    stages.done("write results")
    return standardized.readings.height


@dataclass(frozen=True)
class OneProcessJob:
    layout: Layout
    days: tuple[date, ...]  # D-6..D


def one_process(job: OneProcessJob, stages: Stages) -> int:
    """The reference for --check: every day read whole and standardized in one process, then day D
    scored with the whole history, as one shard would."""
    root, out = job.layout.root, job.layout.one_process()
    *history_days, day = job.days
    stats = [standardize(read_files(root, landing_objects(root, d), d).rows, d, CONFIG).meter_stats for d in history_days]
    history = pl.concat(stats) if stats else None
    partition = read_files(root, landing_objects(root, day), day)
    standardized = standardize(partition.rows, day, CONFIG)
    scored = score_partition(standardized.readings, day, CONFIG, history)
    results = {"files": file_outcomes(partition), "history meter_stats": history,
               "meter_stats": standardized.meter_stats, "rejected": standardized.rejected,
               "revisions": standardized.revisions, "readings": scored.readings, "meters": scored.meters,
               "estimates": scored.estimates,
               "meter_daily": meter_daily(scored.readings, scored.meters, day, scored.estimates)}
    for name, frame in results.items():
        if frame is not None:
            write(frame, out / f"{name}.parquet")
    stages.done("one process")
    return standardized.readings.height


# -- the engine: phases of child processes ----------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float  # wall, from the first process started to the last one done
    reports: list[Report]

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.reports)

    @property
    def cpu_seconds(self) -> float:
        return sum(r.cpu_seconds for r in self.reports)

    @property
    def peak_gb(self) -> float:
        return max(r.peak_gb for r in self.reports)

    def stage_seconds(self) -> dict[str, float]:
        """Each stage summed over the phase's processes."""
        totals: dict[str, float] = {}
        for report in self.reports:
            for stage, seconds in report.stages.items():
                totals[stage] = totals.get(stage, 0.0) + seconds
        return totals


def run_phase(name: str, task: Callable, jobs: Sequence, workers: int) -> Phase:
    """Each job in a fresh spawned process (max_tasks_per_child=1), at most `workers` at once:
    a process's peak RSS is then one job's, and no Polars thread pool is forked."""
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
        reports = list(pool.map(partial(measured, task), jobs))
    return Phase(name, time.perf_counter() - started, reports)


@dataclass(frozen=True)
class Day:
    day: date
    objects: list[LandingObject]
    batches: int
    parse: Phase
    shards: Phase


def history_day(layout: Layout, day: date, shards: int, batch_bytes: int, workers: int) -> None:
    """Standardize a day before D, unless an earlier run left it split the same way (the data is
    generated once, with a fixed seed, so its statistics do not change)."""
    if len(stats_files(layout, day)) == shards and not (layout.day(day) / "parts").exists():
        print(f"history {day}: reused ({shards} shards' meter_stats of an earlier run)")
        return
    done = run_day(layout, day, shards, batch_bytes, workers, score=False)
    print(f"history {day}: parse {len(done.parse.reports)} × {done.parse.seconds:.1f} s, "
          f"shards {len(done.shards.reports)} × {done.shards.seconds:.1f} s wall, "
          f"peak {max(done.parse.peak_gb, done.shards.peak_gb):.2f} GB")


def run_day(layout: Layout, day: date, shards: int, batch_bytes: int, workers: int, score: bool) -> Day:
    """The two phases of one day; the parts are removed once the shards have read them."""
    shutil.rmtree(layout.day(day), ignore_errors=True)
    objects = landing_objects(layout.root, day)
    batches = parse_batches(objects, batch_bytes)
    parse = run_phase("parse + route", parse_batch,
                      [ParseJob(layout, day, b, tuple(batch), shards) for b, batch in enumerate(batches)], workers)
    shard_phase = run_phase("shards: standardize, score, meter_daily" if score else "shards: standardize",
                            shard_day, [ShardJob(layout, day, k, shards, score) for k in range(shards)], workers)
    shutil.rmtree(layout.day(day) / "parts")
    return Day(day, objects, len(batches), parse, shard_phase)


# -- data, check and printing ------------------------------------------------------------


def generate(layout: Layout, meters: int) -> None:
    """The generator's landing zone for `meters`, unless already there (child process: its memory is its own)."""
    if (layout.root / "manifest.json").exists():
        print(f"data: {layout.root} (generated before)")
        return
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "greenstream_dagster.cli", "generate", "--out", str(layout.root),
         "--meters", str(meters), "--days", str(DAYS), "--start", START.isoformat(), "--faults", "default",
         "--overwrite"],
        check=True,
    )
    print(f"generated {meters:,} meters × {DAYS} days in {time.perf_counter() - started:.1f} s into {layout.root}")


def sharded(layout: Layout, day: date, name: str) -> pl.DataFrame:
    """A result of all shards (or the parse batches' file outcomes) put together."""
    folder = layout.files(day) if name == "files" else layout.day(day) / "results"
    pattern = "batch-*.parquet" if name == "files" else f"shard-*/{name}.parquet"
    return pl.concat([pl.read_parquet(p) for p in sorted(folder.glob(pattern))])


def same_rows(left: pl.DataFrame, right: pl.DataFrame) -> bool:
    """Equal as sets of rows: sorted by every column; floats to 1e-9 relative (a sum's terms come in frame order)."""
    if left.schema != right.schema or left.height != right.height:
        return False
    try:
        assert_frame_equal(left.sort(pl.all(), nulls_last=True), right.sort(pl.all(), nulls_last=True),
                           rel_tol=1e-9, abs_tol=1e-12)
    except AssertionError:
        return False
    return True


def check(layout: Layout, days: list[date]) -> tuple[list[str], list[str]]:
    """The frames compared, and those where the shards put together differ from one process."""
    run_phase("one process", one_process, [OneProcessJob(layout, tuple(days))], 1)
    *history_days, day = days
    expected = {p.stem: pl.read_parquet(p) for p in layout.one_process().glob("*.parquet")}
    got = {name: sharded(layout, day, name) for name in (*DAY_RESULTS, "files")}
    if history_days:
        got["history meter_stats"] = pl.concat([sharded(layout, d, "meter_stats") for d in history_days])
    names = sorted(expected.keys() | got.keys())
    return names, [name for name in names
                   if name not in got or name not in expected or not same_rows(got[name], expected[name])]


def summary(day: Day, meters: int, shards: int, load: tuple[float, ...]) -> dict:
    """Day D's totals, kept beside the data so another fleet size can be compared with them."""
    phases = (day.parse, day.shards)
    return {"meters": meters, "shards": shards, "readings": day.shards.rows,
            "seconds": sum(p.seconds for p in phases), "cpu_seconds": sum(p.cpu_seconds for p in phases),
            "peak_gb": max(p.peak_gb for p in phases), "load_average": load,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def print_day(day: Day, totals: dict, baseline: dict | None) -> None:
    phases = (day.parse, day.shards)
    readings, total = totals["readings"], totals["seconds"]
    meters, shards = totals["meters"], totals["shards"]
    print(f"\nday {day.day}: {meters:,} meters, {day.parse.rows:,} rows in {len(day.objects):,} files "
          f"({sum(o.size for o in day.objects) / 1e9:.2f} GB of CSV), {day.batches} parse batches, {shards} shards, "
          f"{readings:,} readings")
    print(f"{'phase':<42}{'processes':>10}{'wall s':>10}{'CPU s':>10}{'max peak RSS GB':>17}{'readings/s':>13}")
    for phase in phases:
        print(f"{phase.name:<42}{len(phase.reports):>10}{phase.seconds:>10.1f}{phase.cpu_seconds:>10.1f}"
              f"{phase.peak_gb:>17.2f}{readings / phase.seconds:>13,.0f}")
    print(f"{'total day D':<42}{sum(len(p.reports) for p in phases):>10}{total:>10.1f}"
          f"{sum(p.cpu_seconds for p in phases):>10.1f}{max(p.peak_gb for p in phases):>17.2f}{readings / total:>13,.0f}")
    for phase in phases:
        stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in phase.stage_seconds().items())
        print(f"  {phase.name} (s summed over processes): {stages}")
    peak = totals["peak_gb"]
    start, end, end_5min = totals["load_average"]
    print(f"load average of the machine ({os.cpu_count()} cores; others' work included): 1 min {start:.1f} at the "
          f"start of day D, {end:.1f} at its end; 5 min {end_5min:.1f} at its end")
    print(f"peak RSS of any process {peak:.2f} GB (target ≤ {TARGET_PEAK_GB:.0f} GB): "
          f"{'met' if peak <= TARGET_PEAK_GB else 'NOT met'}")
    if meters == BASELINE_METERS:
        return
    if baseline is None:
        print(f"(no {BASELINE_METERS:,}-meter day measured yet: run this script with --meters {BASELINE_METERS} "
              "for the ratio)")
        return
    ratio, cpu_ratio = total / baseline["seconds"], totals["cpu_seconds"] / baseline["cpu_seconds"]
    print(f"total {total:.1f} s = {ratio:.1f} × the {BASELINE_METERS:,}-meter day's {baseline['seconds']:.1f} s "
          f"(target ≤ {TARGET_RATIO:.0f} ×): {'met' if ratio <= TARGET_RATIO else 'NOT met'}; "
          f"CPU {totals['cpu_seconds']:.1f} s = {cpu_ratio:.1f} × its {baseline['cpu_seconds']:.1f} s "
          f"(that day measured {baseline['measured_at']}, load average {baseline['load_average'][0]:.1f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", action="store_true", help="(b) the rules path, every phase in child processes")
    parser.add_argument("--deployed", action="store_true", help="(a) a day as deployed, with 1 and 2 workers")
    parser.add_argument("--out", type=Path, help="--deployed: the services' state and data (default --data/deployed-N)")
    parser.add_argument("--meters", type=int, default=1_000_000)
    parser.add_argument("--meters-per-shard", type=int, default=DEFAULT_METERS_PER_SHARD)
    parser.add_argument("--batch-mb", type=float, default=256, help="listed MB of landing files per parse batch (256)")
    parser.add_argument("--workers", type=int, default=2, help="processes at once (2)")
    parser.add_argument("--data", type=Path, default=Path("/work/scale-data"), help="generated data and work files")
    parser.add_argument("--check", action="store_true", help="compare the shards put together with one process")
    parser.add_argument("--clean", action="store_true", help="remove the generated data at the end")
    args = parser.parse_args()
    if args.rules == args.deployed:
        parser.error("choose the path to benchmark: --deployed or --rules")
    if args.deployed:
        import bench_scale_deployed

        return bench_scale_deployed.run(args.meters, args.data, args.out)
    layout = Layout(args.data / f"meters-{args.meters}")
    shards = shard_count(args.meters, args.meters_per_shard)
    days = [START + timedelta(days=k) for k in range(DAYS)]
    batch_bytes = int(args.batch_mb * 1e6)
    generate(layout, args.meters)
    started = time.perf_counter()
    for day in days[:-1]:
        history_day(layout, day, shards, batch_bytes, args.workers)
    print(f"history: {DAYS - 1} days in {time.perf_counter() - started:.1f} s (not part of day D)")
    load = os.getloadavg()[0]
    done = run_day(layout, days[-1], shards, batch_bytes, args.workers, score=True)
    totals = summary(done, args.meters, shards, (load, *os.getloadavg()[:2]))
    (layout.root / SUMMARY).write_text(json.dumps(totals, indent=2))
    baseline_file = args.data / f"meters-{BASELINE_METERS}" / SUMMARY
    print_day(done, totals, json.loads(baseline_file.read_text()) if baseline_file.exists() else None)
    if args.check:
        names, differ = check(layout, days)
        print(f"identical to one process: {'no, ' + ', '.join(differ) + ' differ' if differ else 'yes'} "
              f"({shards} shards; compared: {', '.join(names)})")
    if args.clean:
        shutil.rmtree(layout.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
