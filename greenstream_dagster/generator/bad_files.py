"""Whole objects the platform must not read as readings (SPEC §1).

Dead-letter files have a landing key but cannot be read as a readings CSV;
ignored keys fall outside the landing pattern. Both carry an otherwise valid
reading where they can, so a platform that wrongly reads them shows it.
"""

from __future__ import annotations

import gzip
from datetime import date

import numpy as np

# kind -> (file name in the date folder, reason reported in the manifest)
DEAD_LETTER_KINDS = {
    "wrong_header": ("export-wrong-header.csv", "header lacks the columns meter_id, timestamp, value"),
    "duplicate_column": ("export-duplicate-column.csv", "header names the column value twice"),
    "not_utf8": ("export-binary.csv", "not UTF-8 text (binary content)"),
    "corrupt_gzip": ("export-truncated.csv.gz", "corrupt gzip: the stream is cut off"),
    "empty": ("export-empty.csv", "empty object (no header)"),
}


def dead_letter_content(kind: str, sample_row: str, rng: np.random.Generator) -> bytes:
    if kind == "wrong_header":
        return f"meter,time,reading,unit\n{sample_row}\n".encode()
    if kind == "duplicate_column":
        return f"meter_id,timestamp,value,value,unit\n{sample_row}\n".encode()
    if kind == "not_utf8":
        # A PNG signature and random bytes: 0xFF never occurs in UTF-8.
        return b"\x89PNG\r\n\x1a\n\xff" + rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
    if kind == "corrupt_gzip":
        text = ("meter_id,timestamp,value,unit\n" + f"{sample_row}\n" * 200).encode()
        whole = gzip.compress(text, mtime=0)
        return whole[: len(whole) // 2]
    if kind == "empty":
        return b""
    raise ValueError(f"unknown dead letter kind {kind!r}")


def ignored_keys(day: date) -> list[tuple[str, str]]:
    """(key, reason) of objects under raw-data/ that the landing pattern rejects."""
    d = day.isoformat()
    return [
        ("raw-data/2024-13-45/readings-0000.csv", "2024-13-45 is not a calendar date"),
        (f"raw-data/{d.replace('-', '')}/readings-0000.csv", "date folder is not YYYY-MM-DD"),
        (f"raw-data/{d}/notes.txt", "extension is not .csv or .csv.gz"),
        (f"raw-data/{d}/readings-0000.csv.bak", "extension is not .csv or .csv.gz"),
        ("raw-data/readings-0000.csv", "no date folder"),
    ]
