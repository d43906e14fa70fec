"""`greenstream generate`: write a synthetic landing zone and its manifest to a folder.

Uploading it to S3 is `greenstream upload`'s job.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import date
from pathlib import Path

from greenstream_dagster.generator.config import PRESETS, GeneratorConfig, GeneratorError, with_preset
from greenstream_dagster.generator.generation import generate

METER_COUNTS = ("stuck_meters", "spike_meters", "gap_meters", "silent_meters", "vanished_meters", "short_gap_meters")
COUNTS = ("gap_days", "silent_days", "quarantine_rows", "validation_rows", "revisions", "duplicates")
_FAULT_HELP = {"short_gap_meters": "a short gap of 1-8 slots every day (SPEC §3b)"}
SWITCHES = ("dead_letter_files", "ignored_keys", "format_quirks")


def _count_or_share(text: str) -> int | float:
    """`12` is a count of meters, `0.5%` a share of them."""
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 12 or a share like 0.5%, got {text!r}") from None


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="write synthetic smart-meter CSV files with injected faults", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for raw-data/ and manifest.json")
    parser.add_argument("--meters", type=int, default=1000, help="meters (1000)")
    parser.add_argument("--days", type=int, default=7, help="UTC days (7)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 4, 15),
                        help="first day, YYYY-MM-DD (2024-04-15)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (0)")
    parser.add_argument("--meters-per-file", type=int, default=1000, help="meters per readings file (1000)")
    parser.add_argument("--gzip-share", type=float, default=0.0, help="share of readings files as .csv.gz (0)")
    parser.add_argument("--faults", choices=PRESETS, default="none",
                        help="preset of injections (none); the flags below override it")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing raw-data/ in --out")
    group = parser.add_argument_group("injections", "all off unless a preset or flag turns them on")
    for name in METER_COUNTS:
        group.add_argument("--" + name.replace("_", "-"), type=_count_or_share, metavar="N|P%",
                           help=f"meters with {_FAULT_HELP.get(name, 'one ' + name.split('_')[0] + ' fault')}: "
                           "a count or a share")
    group.add_argument("--gap-days", type=int, help="whole silent days of a gap meter (2)")
    group.add_argument("--silent-days", type=int, help="whole silent days of a silent meter before it returns (3); "
                       "a vanished meter never returns")
    group.add_argument("--quarantine-rows", type=int, metavar="N", help="rows per quarantine code per day")
    group.add_argument("--validation-rows", type=int, metavar="N",
                       help="rows per validation issue kind per day")
    group.add_argument("--revisions", type=int, metavar="N", help="readings revised by a later file, per day")
    group.add_argument("--duplicates", type=int, metavar="N", help="readings delivered twice, per day")
    group.add_argument("--dead-letter-files", action=argparse.BooleanOptionalAction,
                       help="one unreadable file of each kind")
    group.add_argument("--ignored-keys", action=argparse.BooleanOptionalAction,
                       help="objects outside the landing key pattern")
    group.add_argument("--format-quirks", action=argparse.BooleanOptionalAction,
                       help="BOM, CRLF, blank lines, quoting, extra columns, padding, sub-folder")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> GeneratorConfig:
    config = with_preset(GeneratorConfig(
        out=args.out, meters=args.meters, days=args.days, start=args.start, seed=args.seed,
        meters_per_file=args.meters_per_file, gzip_share=args.gzip_share), args.faults)
    changes = {}
    for name in METER_COUNTS:
        value = getattr(args, name)
        if value is not None:
            changes[name] = value if isinstance(value, int) else round(value * args.meters)
    for name in COUNTS + SWITCHES:
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return dataclasses.replace(config, **changes)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        config = config_from_args(args)
        manifest = generate(config, overwrite=args.overwrite)
    except GeneratorError as error:
        print(f"greenstream generate: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    totals = manifest.totals
    print(f"wrote {totals['files']} files, {totals['rows']:,} rows, {totals['bytes'] / 1e6:,.1f} MB "
          f"in {seconds:.1f} s ({totals['rows'] / seconds:,.0f} rows/s) to {config.out}")
    print(f"  {config.meters:,} meters × {config.days} days from {config.start}, seed {config.seed}")
    print(f"  faults: {len(manifest.faults.stuck)} stuck, {len(manifest.faults.spikes)} spikes, "
          f"{len(manifest.faults.gaps)} gaps, {len(manifest.faults.silences)} silences, "
          f"{len(manifest.faults.short_gaps)} short gaps; rows: {len(manifest.quarantine)} quarantined, "
          f"{len(manifest.validation)} validation issues, {len(manifest.revisions)} revisions, "
          f"{len(manifest.duplicates)} duplicates; files: {len(manifest.dead_letters)} dead letter, "
          f"{len(manifest.ignored_keys)} ignored")
    print(f"  manifest: {config.out / 'manifest.json'}")
    return 0
