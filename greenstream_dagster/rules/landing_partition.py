"""All landing files of one partition day → one frame of rows, and the files that failed (SPEC §1).

A bad file is set aside whole with its reason while the partition's other files
go on; keys outside the landing pattern are ignored and reported. Fetching the
bytes is injected, so this stays free of S3 and can be tested alone.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from greenstream_dagster.rules.csv_file import DeadLetterFile, read_landing_file
from greenstream_dagster.rules.landing_key import IgnoredKey, LandingObject, parse_landing_key
from greenstream_dagster.rules.schemas import RAW_ROW_COLUMNS


@dataclass(frozen=True)
class LandingPartition:
    rows: pl.DataFrame  # RAW_ROW_COLUMNS of every readable file
    files: list[LandingObject] = field(default_factory=list)  # read successfully
    dead_letters: list[tuple[LandingObject, str]] = field(default_factory=list)  # (file, reason)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)

    @property
    def csv_bytes(self) -> int:
        """Stored bytes of the readable files (gzip counted as stored)."""
        return sum(obj.size for obj in self.files)


def read_landing_partition(
    objects: list[LandingObject], day: date, fetch: Callable[[str], bytes], max_workers: int = 8
) -> LandingPartition:
    """Read every landing file of the day; `fetch(key)` returns an object's bytes."""
    ignored, wanted = [], []
    for obj in objects:
        try:
            key = parse_landing_key(obj.key)
        except IgnoredKey as reason:
            ignored.append((obj.key, str(reason)))
            continue
        if key.partition_date != day:
            ignored.append((obj.key, f"{obj.key}: belongs to {key.partition_date}, not {day}"))
            continue
        wanted.append((obj, key.gzip))

    def read(item):
        obj, gzipped = item
        try:
            return obj, read_landing_file(fetch(obj.key), obj.key, obj.last_modified, gzipped), None
        except DeadLetterFile as reason:
            return obj, None, str(reason)

    # Fetching is I/O and Polars releases the GIL: threads overlap both.
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        results = list(pool.map(read, wanted))
    frames = [rows for _, rows, _ in results if rows is not None]
    return LandingPartition(
        rows=pl.concat(frames) if frames else pl.DataFrame(schema=RAW_ROW_COLUMNS),
        files=[obj for obj, rows, _ in results if rows is not None],
        dead_letters=[(obj, reason) for obj, _, reason in results if reason is not None],
        ignored=ignored,
    )
