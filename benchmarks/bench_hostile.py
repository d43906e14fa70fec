"""Peak memory of the day's read (what `raw_readings` runs) on decompression bombs and floods (SPEC §1 limits).

    python benchmarks/bench_hostile.py [--out benchmarks/output/hostile]

Each case is one date folder read by `read_landing_partition` — the function the
`raw_readings` asset calls, with the default limits (1 GiB per object, 1 MiB per
line) — in a child process of its own, so every peak RSS is that case's alone:

- 1 GiB of zeros, gzipped (about 1 MB stored);
- 1.5 GiB of text, gzipped: over the object limit;
- 100 MiB of newlines, gzipped (about 100 KB stored), then one row;
- a 50 MiB single line between good rows;
- all of them together beside eight good files, read by the usual eight threads.

Prints, per case, the outcome (rows, dead letters and their reasons), the seconds
and the peak RSS, and the baseline RSS of a child that only imports the reader.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import zlib
from datetime import date, datetime, timezone
from pathlib import Path

DAY = date(2024, 6, 10)
MIB = 1024**2
HEADER = b"meter_id,timestamp,value,unit\n"


def good_rows(count: int, base: int = 0) -> bytes:
    return b"".join(b"SM-%d,2024-06-10T%02d:%02d:00Z,%d,W\n" % (base + i % 500, (i // 500) % 24, 15 * (i % 4), 100 + i)
                    for i in range(count))


def write_gzip(path: Path, chunks) -> None:
    """Gzip a stream of chunks to a file without holding the whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(compressor.compress(chunk))
        out.write(compressor.flush())


def repeated(byte: bytes, total: int, prefix: bytes = b"", suffix: bytes = b""):
    yield prefix
    block = byte * (8 * MIB)
    for start in range(0, total, len(block)):
        yield block[: min(len(block), total - start)]
    yield suffix


def build(folder: Path) -> dict[str, list[str]]:
    """The cases' files under raw-data/DAY/ of their own folder; returns case → keys."""
    day = folder / "raw-data" / DAY.isoformat()
    day.mkdir(parents=True, exist_ok=True)
    files = {
        "zeros_1gib.csv.gz": lambda p: write_gzip(p, repeated(b"\x00", 1024 * MIB)),
        "text_1_5gib.csv.gz": lambda p: write_gzip(p, repeated(b"a", 1536 * MIB, HEADER)),
        "newlines_100mib.csv.gz": lambda p: write_gzip(p, repeated(b"\n", 100 * MIB, HEADER, good_rows(1))),
        "line_50mib.csv": lambda p: p.write_bytes(HEADER + good_rows(10) + b"SM-1," + b"x" * (50 * MIB) + b"\n"
                                                  + good_rows(10, 1000)),
    }
    for i in range(8):
        files[f"good_{i}.csv"] = (lambda i: lambda p: p.write_bytes(HEADER + good_rows(100_000, 10_000 * i)))(i)  # noqa: B023 (bound by the outer lambda)
    for name, write in files.items():
        if not (day / name).exists():
            write(day / name)
    bombs = [n for n in files if not n.startswith("good_")]
    cases = {name: [name] for name in bombs}
    cases["all_together_with_8_good_files"] = list(files)
    return cases


def child(folder: Path, names: list[str]) -> None:
    """Read one case like raw_readings does and print its outcome and peak RSS as JSON."""
    from greenstream_dagster.rules.landing_key import LandingObject
    from greenstream_dagster.rules.landing_partition import read_landing_partition

    day = folder / "raw-data" / DAY.isoformat()
    objects = [
        LandingObject(key=f"raw-data/{DAY.isoformat()}/{n}", size=(day / n).stat().st_size, etag="",
                      last_modified=datetime(2024, 6, 10, 23, tzinfo=timezone.utc))
        for n in names
    ]
    started = time.perf_counter()
    partition = read_landing_partition(objects, DAY, lambda key: (folder / key).read_bytes()) if names else None
    seconds = time.perf_counter() - started
    print(json.dumps({
        "rows": partition.rows.height if partition else 0,
        "dead_letters": [f"{o.key.rsplit('/', 1)[1]}: {r[:90]}" for o, r in partition.dead_letters] if partition else [],
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/output/hostile"))
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.out, args.child)
        return 0
    print(f"building the bombs under {args.out} …", flush=True)
    cases = {"baseline (imports only)": [], **build(args.out)}
    print(f"{'case':<34} {'stored MB':>10} {'rows':>8} {'seconds':>8} {'peak RSS MB':>12}  outcome")
    for case, names in cases.items():
        stored = sum((args.out / "raw-data" / DAY.isoformat() / n).stat().st_size for n in names) / 1e6
        out = subprocess.run([sys.executable, __file__, "--out", str(args.out), "--child", *names],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case:<34} {stored:>10.1f} {result['rows']:>8} {result['seconds']:>8} {result['peak_rss_mb']:>12}  "
              f"{'; '.join(result['dead_letters']) or '-'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
