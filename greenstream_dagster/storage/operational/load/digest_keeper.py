"""The digests of a load's parts, stored while the load goes on (changed_rows.py)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import polars as pl


class DigestKeeper:
    """Stores each part's digest in a thread of its own, one at a time: the upload of a part's
    digest overlaps the COPY of the next part, and at most one digest waits in memory besides the
    part at hand. `wait` returns once every digest is stored (raising what an upload raised); the
    load commits only after it. Left (as a context manager) only once no upload is running."""

    def __init__(self, keep: Callable[[int, pl.DataFrame], None] | None):
        self._keep = keep
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._uploading: Future | None = None

    def keep(self, part: int, digest: pl.DataFrame) -> None:
        if self._keep is None:
            return
        self.wait()
        self._uploading = self._pool.submit(self._keep, part, digest)

    def wait(self) -> None:
        if self._uploading is not None:
            self._uploading.result()

    def __enter__(self) -> DigestKeeper:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._pool.shutdown(wait=True)
