"""`greenstream upload <folder>`: put a local landing folder into the landing bucket (SPEC §1).

The folder is laid out as the generator writes it, `raw-data/YYYY-MM-DD/...`;
each file keeps its path relative to the folder as its key. Passing the
`raw-data` folder itself works too. Within a date folder files go up in key
order, one at a time, so the platform's delivery order is the key order (the
generator names revision files to be delivered last). Files whose key the
landing-key rule would ignore are uploaded anyway (the platform reports them,
as it would for any producer) and listed in a warning here.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from greenstream_dagster.rules.landing_key import LANDING_PREFIX, IgnoredKey, parse_landing_key
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.s3 import MAX_POOL_CONNECTIONS, s3_client

DEFAULT_WORKERS = 16
_TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, use_threads=False)


@dataclass(frozen=True)
class UploadResult:
    files: int
    bytes: int
    ignored_keys: list[str]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="upload a local raw-data/YYYY-MM-DD/... folder into the landing bucket",
        description=__doc__,
    )
    parser.add_argument("folder", type=Path, help="folder holding raw-data/ (or the raw-data folder itself)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="date folders uploaded at the same time")
    parser.set_defaults(func=run)


def run(args) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        print(f"greenstream upload: {folder} is not a folder", file=sys.stderr)
        return 2
    settings = load_settings()
    started = time.monotonic()
    with resolve_services(settings, database=False) as services:
        client = s3_client(services)
        result = upload_folder(client, services.bucket, folder, workers=args.workers)
    seconds = time.monotonic() - started
    print(f"uploaded {result.files} files, {result.bytes:,} bytes to s3://{services.bucket}/ in {seconds:.1f} s")
    if result.ignored_keys:
        shown = "\n  ".join(result.ignored_keys[:10])
        more = f"\n  … and {len(result.ignored_keys) - 10} more" if len(result.ignored_keys) > 10 else ""
        print(f"warning: {len(result.ignored_keys)} keys are outside the landing pattern "
              f"and will be ignored by the platform:\n  {shown}{more}", file=sys.stderr)
    return 0


def landing_files(folder: Path) -> list[tuple[Path, str]]:
    """(path, key) of every file under `folder`, the key being its path relative to the landing root."""
    root = folder.parent if folder.name == LANDING_PREFIX.rstrip("/") else folder
    return sorted(
        ((path, path.relative_to(root).as_posix()) for path in folder.rglob("*") if path.is_file()),
        key=lambda pair: pair[1],
    )


def upload_folder(client, bucket: str, folder: Path, workers: int = DEFAULT_WORKERS) -> UploadResult:
    """Upload every file under `folder`; returns counts and the keys the platform will ignore.

    Delivery order matters (SPEC §2: the last delivered row of an interval key
    wins, ordered by last-modified time, then key). So the files of one date
    folder go up one after the other in key order — a later key never gets an
    earlier last-modified time — while different date folders upload in parallel.
    """
    files = landing_files(folder)
    by_folder: dict[str, list[tuple[Path, str]]] = {}
    for path, key in files:
        by_folder.setdefault(_delivery_group(key), []).append((path, key))

    def upload_in_order(group: list[tuple[Path, str]]) -> int:
        total = 0
        for path, key in group:  # already in key order
            client.upload_file(str(path), bucket, key, Config=_TRANSFER)
            total += path.stat().st_size
        return total

    with ThreadPoolExecutor(max_workers=max(1, min(workers, MAX_POOL_CONNECTIONS))) as pool:
        total = sum(pool.map(upload_in_order, by_folder.values()))
    return UploadResult(files=len(files), bytes=total, ignored_keys=[key for _, key in files if _ignored(key)])


def _delivery_group(key: str) -> str:
    """The date folder of a landing key (`raw-data/YYYY-MM-DD/`), else the key's own folder."""
    parts = key.split("/")
    if len(parts) > 2 and parts[0] + "/" == LANDING_PREFIX:
        return "/".join(parts[:2])
    return "/".join(parts[:-1])


def _ignored(key: str) -> bool:
    try:
        parse_landing_key(key)
    except IgnoredKey:
        return True
    return False
