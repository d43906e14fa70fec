"""Readings files as bytes: Polars writes the bulk, extra lines are spliced in.

A file is a frame of text fields (meter_id, timestamp, value, unit; null for a
missing field) plus a few extra lines placed between its rows: quarantine rows,
repeated rows and blank lines. Polars renders the frame in the file's layout
(column order, BOM, CRLF, quoting); the extra lines, which a frame cannot hold
(a wrong field count, say), are rendered here and spliced in at row
boundaries. Line numbers are physical lines with the header as line 1 (SPEC §2).
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from greenstream_dagster.generator.layout import FIELDS, FileLayout

HEADER = ",".join(FIELDS)
GZIP_LEVEL = 6


@dataclass(frozen=True)
class ExtraLine:
    """A line inserted before base row `anchor` (len(frame) appends it)."""

    anchor: int
    fields: tuple[str, ...] | None  # in FIELDS order; None is a blank line
    field_delta: int = 0  # fields dropped (<0) or added (>0): a malformed row


@dataclass
class RenderedFile:
    data: bytes  # as stored, compressed when the layout says gzip
    base_lines: np.ndarray  # physical line of each frame row
    extra_lines: list[int] = field(default_factory=list)  # in the order given
    extra_texts: list[str] = field(default_factory=list)  # each line without its line end
    data_rows: int = 0  # header and blank lines excluded


def _quote(text: str, always: bool) -> str:
    if always or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def extra_line_text(line: ExtraLine, layout: FileLayout) -> str:
    if line.fields is None:
        return ""
    fields = line.fields
    if "padded" in layout.quirks:
        fields = tuple(f" {v}  " for v in fields)
    by_name = dict(zip(FIELDS, fields))
    values = [source[1:] if source.startswith("=") else by_name[source] for _, source in layout.columns]
    if line.field_delta < 0:
        values = values[: max(1, len(values) + line.field_delta)]
    elif line.field_delta > 0:
        values = values + ["x"] * line.field_delta
    return ",".join(_quote(v, "quoted" in layout.quirks) for v in values)


def _frame_in_layout(frame: pl.DataFrame, layout: FileLayout) -> pl.DataFrame:
    if "padded" in layout.quirks:
        frame = frame.with_columns((" " + pl.col(name) + "  ").alias(name) for name in FIELDS)
    columns = []
    for header, source in layout.columns:
        expr = pl.lit(source[1:]) if source.startswith("=") else pl.col(source)
        columns.append(expr.alias(header))
    return frame.select(columns)


def render(frame: pl.DataFrame, layout: FileLayout, extras: list[ExtraLine]) -> RenderedFile:
    """The file's bytes and the physical line of every row and extra line."""
    buffer = io.BytesIO()
    _frame_in_layout(frame, layout).write_csv(
        buffer,
        include_bom="bom" in layout.quirks,
        line_terminator=layout.line_end,
        quote_style="always" if "quoted" in layout.quirks else "necessary",
    )
    body = buffer.getvalue()
    rows = frame.height
    order = sorted(range(len(extras)), key=lambda i: (extras[i].anchor, i))
    anchors = np.array([extras[i].anchor for i in order], dtype=np.int64)
    base_lines = np.arange(rows, dtype=np.int64) + 2 + np.searchsorted(anchors, np.arange(rows), side="right")
    extra_lines = [0] * len(extras)
    texts = [extra_line_text(e, layout) for e in extras]
    if extras:
        newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
        if len(newlines) != rows + 1:
            raise AssertionError(f"{layout.key}: a field holds a line break; line numbers would drift")
        starts = np.concatenate(([0], newlines + 1))  # starts[i + 1]: start of row i
        pieces, cursor = [body[: starts[1]]], 0
        for position, i in enumerate(order):
            anchor = extras[i].anchor
            pieces.append(body[starts[1 + cursor]: starts[1 + anchor]])
            pieces.append((texts[i] + layout.line_end).encode("utf-8"))
            extra_lines[i] = anchor + position + 2
            cursor = anchor
        pieces.append(body[starts[1 + cursor]:])
        body = b"".join(pieces)
    if layout.gzip:
        body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    blank = sum(1 for e in extras if e.fields is None)
    return RenderedFile(body, base_lines, extra_lines, texts, rows + len(extras) - blank)


def plain_csv(rows: list[tuple[str, ...]], header: str = HEADER) -> bytes:
    """A small file in the plain layout (revision and redelivery files)."""
    lines = [header] + [",".join(_quote(v, False) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_object(out: Path, key: str, data: bytes) -> int:
    """Write one landing object under `out`; returns its size."""
    path = out / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
