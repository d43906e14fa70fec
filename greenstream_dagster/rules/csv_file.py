"""Reading one landing file into rows of text (SPEC §1).

A file that cannot be read as the landing CSV (corrupt gzip, empty, not UTF-8
text, wrong header) raises DeadLetterFile with the reason: the whole file goes
to the dead letter store while the partition's other files go on. Rows keep
their 1-based physical line (the header is line 1; blank lines count) and their
text, so a quarantined row can be shown exactly as uploaded.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from datetime import datetime

import polars as pl

from greenstream_dagster.rules.schemas import RAW_ROW_COLUMNS

REQUIRED_COLUMNS = ("meter_id", "timestamp", "value", "unit")
_BOM = "\ufeff"


class DeadLetterFile(ValueError):
    """The whole file is unreadable as landing CSV; the message is the reason."""


def decode_landing_bytes(data: bytes, gzipped: bool) -> str:
    """Bytes of an object → text, or DeadLetterFile naming why not."""
    if not data:
        raise DeadLetterFile("empty object")
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DeadLetterFile(f"corrupt gzip: {error}") from None
        if not data:
            raise DeadLetterFile("empty file after gzip decompression")
    if b"\x00" in data:
        raise DeadLetterFile("not text: contains NUL bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DeadLetterFile(f"not UTF-8 text: invalid byte at offset {error.start}") from None
    return text.removeprefix(_BOM)


def header_positions(header: list[str]) -> dict[str, int]:
    """Column name → index; names trimmed and matched case-insensitively, each exactly once."""
    names = [name.strip().lower() for name in header]
    positions = {}
    for column in REQUIRED_COLUMNS:
        found = [i for i, name in enumerate(names) if name == column]
        if len(found) != 1:
            problem = "missing" if not found else f"present {len(found)} times"
            raise DeadLetterFile(
                f"header: column {column!r} {problem} (header was {','.join(header)!r})"
            )
        positions[column] = found[0]
    return positions


def read_landing_file(
    data: bytes, source_key: str, source_modified_at: datetime, gzipped: bool
) -> pl.DataFrame:
    """One landing object → its data rows as text (RAW_ROW_COLUMNS), fields trimmed, empty → null."""
    text = decode_landing_bytes(data, gzipped)
    # Quote-free files (the common case) are split with Polars; quoting can
    # span lines, so files with quotes take the RFC 4180 reader instead.
    records = _quoted_records(text) if '"' in text else _plain_records(text)
    return _fields(records).with_columns(
        pl.lit(source_key, pl.Utf8).alias("source_key"),
        pl.lit(source_modified_at, RAW_ROW_COLUMNS["source_modified_at"]).alias("source_modified_at"),
    ).select(list(RAW_ROW_COLUMNS))


def _is_blank() -> pl.Expr:
    return pl.col("raw_line").str.strip_chars() == ""


def _plain_records(text: str) -> pl.DataFrame:
    """Physical lines → records: line number, text and fields (split on commas)."""
    lines = (
        pl.DataFrame({"raw_line": pl.Series([text]).str.split("\n").explode(empty_as_null=False)})
        .with_row_index("source_line", offset=1)
        .with_columns(pl.col("raw_line").str.strip_suffix("\r"))
        .filter(~_is_blank())
        .with_columns(pl.col("raw_line").str.split(",").alias("fields"))
    )
    return _after_header(lines)


def _quoted_records(text: str) -> pl.DataFrame:
    """RFC 4180 records; a record's line is the physical line where it starts."""
    physical = [line.removesuffix("\r") for line in text.split("\n")]
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, raw_lines, fields = [], [], []
    previous_end = 0
    for record in reader:
        start, end = previous_end + 1, reader.line_num
        previous_end = end
        raw = "\n".join(physical[start - 1 : end])
        if not record or raw.strip() == "":
            continue
        starts.append(start)
        raw_lines.append(raw)
        fields.append(record)
    lines = pl.DataFrame(
        {"source_line": starts, "raw_line": raw_lines, "fields": fields},
        schema={"source_line": pl.UInt32, "raw_line": pl.Utf8, "fields": pl.List(pl.Utf8)},
    )
    return _after_header(lines)


def _after_header(lines: pl.DataFrame) -> pl.DataFrame:
    """Validate the header (first non-blank record) and keep the data records with column positions."""
    if lines.height == 0:
        raise DeadLetterFile("no header row: the file has only blank lines")
    header = lines["fields"][0].to_list()
    positions = header_positions(header)
    records = lines.slice(1)
    return records.with_columns(
        (pl.col("fields").list.len() == len(header)).alias("field_count_ok"),
        *[
            pl.col("fields").list.get(index, null_on_oob=True).alias(column)
            for column, index in positions.items()
        ],
    )


def _fields(records: pl.DataFrame) -> pl.DataFrame:
    """Trim every field (SPEC §2) and turn empty ones into null (missing)."""
    return records.with_columns(
        pl.col("source_line").cast(pl.Int64),
        *[
            pl.col(c).str.strip_chars().replace("", None).alias(c)
            for c in REQUIRED_COLUMNS
        ],
    )
