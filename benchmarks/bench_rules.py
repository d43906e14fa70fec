"""Benchmark of the rules engine (SPEC §1–4) on a full day: 50,000 meters, 4.8 million readings,
with six days of history for the fault window.

    python benchmarks/bench_rules.py [--meters 50000] [--days 7] [--out benchmarks/output/rules]

The data comes from the project's generator (run in a child process, so its
memory is not counted). Days D-6..D-1 are standardized first, as earlier runs
would have done, and kept as Parquet.
The history kept is what the platform keeps: each day's meter-day statistics
(50,000 rows a day). Then day D is timed stage by stage: read the CSV files,
standardize, score, meter_daily. Prints rows per second per stage and the peak memory (RSS).
The estimation of short gaps (SPEC §3b) runs inside the scoring; it is also timed alone on the
scored day ("of which estimation", best of three), which is the cost VEE adds to a day.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.estimation import short_gap_estimates
from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_partition import read_landing_partition
from greenstream_dagster.rules.meter_daily import meter_daily
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster.rules.standardize import standardize
from greenstream_dagster.storage.lake import to_parquet

START = date(2024, 4, 9)


def landing_objects(root: Path, day: date) -> list[LandingObject]:
    folder = root / "raw-data" / day.isoformat()
    return [
        LandingObject(
            key=str(path.relative_to(root)), size=path.stat().st_size, etag="",
            last_modified=datetime.fromtimestamp(path.stat().st_mtime, timezone.utc),
        )
        for path in sorted(folder.rglob("*")) if path.is_file()
    ]


def read_day(root: Path, day: date):
    return read_landing_partition(landing_objects(root, day), day, lambda key: (root / key).read_bytes())


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/output/rules"))
    args = parser.parse_args()
    config = RulesConfig(partitions_start=START)
    last = START + timedelta(days=args.days - 1)

    if not (args.out / "manifest.json").exists():
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "greenstream_dagster.cli", "generate", "--out", str(args.out),
             "--meters", str(args.meters), "--days", str(args.days), "--start", START.isoformat(),
             "--faults", "default", "--overwrite"],
            check=True,
        )
        print(f"generated {args.meters:,} meters × {args.days} days in {time.perf_counter() - started:.1f} s")

    history_dir = args.out / "meter_stats"
    history_dir.mkdir(exist_ok=True)
    started = time.perf_counter()
    for k in range(args.days - 1):
        day = START + timedelta(days=k)
        target = history_dir / f"{day}.parquet"
        if not target.exists():
            standardize(read_day(args.out, day).rows, day, config).meter_stats.write_parquet(target)
    print(f"history: {args.days - 1} days standardized in {time.perf_counter() - started:.1f} s (not part of day D)")

    timings: dict[str, tuple[float, int]] = {}
    peaks: dict[str, float] = {}

    def timed(stage: str, rows_of, fn):
        t0 = time.perf_counter()
        out = fn()
        timings[stage] = (time.perf_counter() - t0, rows_of(out))
        peaks[stage] = peak_rss_gb()
        return out

    partition = timed("read CSV", lambda p: p.rows.height, lambda: read_day(args.out, last))
    csv_bytes, files = partition.csv_bytes, len(partition.files)
    standardized = timed("standardize", lambda s: s.readings.height, lambda: standardize(partition.rows, last, config))  # noqa: F821 (deleted after use)
    history = pl.scan_parquet(sorted(history_dir.glob("*.parquet")))
    scored = timed("score (7-day window)", lambda s: s.readings.height,
                   lambda: score_partition(standardized.readings, last, config, history))  # noqa: F821
    estimation = min(_seconds(lambda: short_gap_estimates(scored.readings, last, config.max_estimate_slots).collect())
                     for _ in range(3))
    timings["  of which estimation"] = (estimation, scored.readings.height)
    peaks["  of which estimation"] = peak_rss_gb()
    daily = timed("meter_daily", lambda d: d.height, lambda: meter_daily(scored.readings, scored.meters, last, scored.estimates))
    counts = (standardized.readings.height, standardized.rejected.height, standardized.revisions.height)
    # The platform runs each stage as its own step, which holds only its inputs: so does the lake stage here.
    del partition, standardized
    graded = scored.readings.filter(pl.col("quality_grade").is_in(["A", "B", "C"]))
    lake_bytes = timed("lake Parquet (both)", lambda b: graded.height,
                       lambda: len(to_parquet("readings", last, graded)) + len(to_parquet("meter_daily", last, daily)))

    total = sum(seconds for stage, (seconds, _) in timings.items()
                if not stage.startswith("lake") and not stage.startswith(" "))
    print(f"\nday {last}: {timings['read CSV'][1]:,} rows in {files} files, {csv_bytes / 1e6:,.1f} MB of CSV")
    print(f"{'stage':<24}{'seconds':>10}{'rows':>14}{'rows/s':>16}{'peak RSS GB':>14}")
    for stage, (seconds, rows) in timings.items():
        print(f"{stage:<24}{seconds:>10.2f}{rows:>14,}{rows / seconds:>16,.0f}{peaks[stage]:>14.2f}")
    print(f"{'total day D (no lake)':<24}{total:>10.2f}{scored.readings.height:>14,}{scored.readings.height / total:>16,.0f}")
    print(f"\nreadings {counts[0]:,}, quarantined {counts[1]:,}, revisions {counts[2]:,}, meters {daily.height:,}")
    print(f"stuck {int(scored.meters['stuck'].sum())}, spike readings {int(scored.readings['is_spike'].sum())}, "
          f"gaps {int(scored.meters['gap'].sum())}")
    print(f"estimated slots {scored.estimates.height:,} of {scored.estimates['meter_id'].n_unique():,} meters "
          f"(runs of at most {config.max_estimate_slots} slots), {estimation:.2f} s")
    print(f"lake day: {lake_bytes / 1e6:,.1f} MB of Snappy Parquet = {lake_bytes / csv_bytes:.1%} of the day's CSV bytes")
    print(f"peak memory (RSS): {peak_rss_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
