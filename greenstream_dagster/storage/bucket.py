"""The S3 bucket as one handle: its client and its name, which every read and write needs together.

The staged frames' read, write and delete are staging.py's, here taking the
handle instead of the loose pair (staging.py keeps its own signatures, which
the reading assets call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from greenstream_dagster.storage import staging


@dataclass(frozen=True)
class Bucket:
    """A bucket of the platform (SPEC §8: GREENSTREAM_BUCKET) and the S3 client that reaches it."""

    client: Any  # a boto3 S3 client (storage/s3.py)
    name: str

    def read_frame(self, asset: str, day: date, name: str) -> pl.DataFrame | None:
        """The asset's staged frame of the day; None when it was never staged."""
        return staging.read_frame(self.client, self.name, asset, day, name)

    def write_frame(self, asset: str, day: date, name: str, frame: pl.DataFrame) -> int:
        """Stage the frame whole; returns bytes written."""
        return staging.write_frame(self.client, self.name, asset, day, name, frame)

    def delete_frame(self, asset: str, day: date, name: str) -> None:
        staging.delete_frame(self.client, self.name, asset, day, name)

    def delete_frames_starting(self, asset: str, day: date, start: str) -> None:
        staging.delete_frames_starting(self.client, self.name, asset, day, start)

    def frame_exists(self, asset: str, day: date, name: str) -> bool:
        return staging.frame_exists(self.client, self.name, asset, day, name)
