"""All landing files of one partition day → one frame of rows, and the files that failed (SPEC §1).

A bad file is set aside whole with its reason while the partition's other files
go on; keys outside the landing pattern are ignored and reported. Fetching the
bytes is injected, so this stays free of S3 and can be tested alone.

Memory is bounded by bytes, not only by threads: each file first passes the
streaming checks (a bomb is dead-lettered holding one chunk), then waits until
its decompressed size fits in the day's read budget (`read_budget_bytes`)
beside the files being read; a file larger than the whole budget is read alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from greenstream_dagster.rules.csv_file import DeadLetterFile, checked_size, read_landing_file
from greenstream_dagster.rules.landing_key import IgnoredKey, LandingObject, parse_landing_key
from greenstream_dagster.rules.reading_limits import ReadingLimits
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


class ByteBudget:
    """At most `capacity` bytes held at once by the readers; a claim above it waits to run alone."""

    def __init__(self, capacity: int):
        self.capacity, self.held = capacity, 0
        self._changed = threading.Condition()

    @contextmanager
    def claim(self, size: int) -> Iterator[None]:
        size = min(size, self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self.held + size <= self.capacity)
            self.held += size
        try:
            yield
        finally:
            with self._changed:
                self.held -= size
                self._changed.notify_all()


def read_landing_partition(
    objects: list[LandingObject], day: date, fetch: Callable[[str], bytes], max_workers: int = 8,
    limits: ReadingLimits = ReadingLimits(),
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
    budget = ByteBudget(limits.read_budget_bytes)

    def read(item: tuple[LandingObject, bool]) -> tuple[LandingObject, pl.DataFrame | None, str | None]:
        obj, gzipped = item
        try:
            if not gzipped and obj.size > limits.max_object_bytes:
                # Known from the listing: no need to fetch it to dead-letter it.
                raise DeadLetterFile(f"larger than {limits.max_object_bytes} bytes (the object limit, "
                                     "GREENSTREAM_MAX_OBJECT_BYTES)")
            # A plain file is its own size in memory from the fetch on; a gzip file its compressed size
            # until the streaming checks tell its decompressed size.
            with budget.claim(obj.size):
                data = fetch(obj.key)
                size = checked_size(data, gzipped, limits)
            with budget.claim(size + (len(data) if gzipped else 0)):
                return obj, read_landing_file(data, obj.key, obj.last_modified, gzipped, limits), None
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
