"""Reading one landing file into rows of text (SPEC §1).

Reading never raises on content. A file that cannot be read as the landing CSV
(empty, corrupt gzip, larger than the object limit once decompressed, not
UTF-8 text, wrong header) raises DeadLetterFile with a bounded, escaped reason:
the whole file goes to the dead letter store while the partition's other files
go on. Everything else is a row, however bad: the rules quarantine it.

Decisions, where RFC 4180 and hostile input meet:
- Physical lines end at LF or CRLF; a CR not followed by LF is an ordinary
  character. A blank line has no character at all; `   ` is a one-field row.
- A field is quoted when its first character is `"`; `""` inside is one quote,
  and characters after the closing quote belong to the field (as Python's csv).
  A quoted record may span lines; its row starts on its first line and the
  other lines are its continuation lines.
- A physical line longer than `max_line_bytes`, a quoted record longer than
  that, and a quoted record that never closes are each one MALFORMED_ROW on
  their first line. After a record that never closes (or runs past the limit)
  reading resumes on its next line, so one stray quote costs one row, not the
  rest of the file.
- Every physical line is the header, a blank line, the first line of a row, or a
  continuation line (`line_count` says how many lines a row spans).

Memory: the object is checked in a streaming pass (decompression capped,
NUL bytes and UTF-8 checked chunk by chunk) before it is held whole; it is then
split into segments of a few MiB, so no per-line structure ever exists for more
than one segment (100 MiB of newlines costs one segment's worth, not 4 GB).
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import polars as pl

from greenstream_dagster.rules.bounded_text import bounded, cut_marker, for_log
from greenstream_dagster.rules.reading_limits import MIB, ReadingLimits
from greenstream_dagster.rules.schemas import RAW_ROW_COLUMNS, Columns

REQUIRED_COLUMNS = ("meter_id", "timestamp", "value", "unit")
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 * MIB  # decompressed bytes produced and checked at a time
_SEGMENT = 4 * MIB  # text split into lines at a time
# A line whose quoted fields hold no comma or quote: split on commas, then unquote (no Python per row).
_SIMPLE_QUOTED = r'^(?:"[^",]*"|[^",]*)(?:,(?:"[^",]*"|[^",]*))*$'
_LINE_ENDS = re.compile(rb"[\r\n]+")
_QUOTED_FIELD = re.compile(r'"((?:[^"]++|"")*+)"([^,]*)')
_SEGMENT_SCHEMA: Columns = {
    "source_line": pl.Int64, "line_count": pl.Int64, "raw_line": pl.Utf8,
    "malformed": pl.Boolean, "fields": pl.List(pl.Utf8),
}


class DeadLetterFile(ValueError):
    """The whole file is unreadable as landing CSV; the message is the reason, escaped and bounded."""

    def __init__(self, reason: str):
        super().__init__(for_log(reason))


def checked_size(data: bytes, gzipped: bool, limits: ReadingLimits = ReadingLimits()) -> int:
    """Decompressed size of an object that passes the file-level checks, or DeadLetterFile.

    Streams: holds one chunk of decompressed bytes at a time, so a bomb costs a chunk."""
    check = _TextCheck(limits.max_object_bytes)
    for chunk in _decompressed(data, gzipped, limits.max_object_bytes):
        check.feed(chunk)
    check.finish(gzipped)
    return check.size


def landing_text(data: bytes, gzipped: bool, limits: ReadingLimits = ReadingLimits()) -> tuple[bytes | bytearray, int]:
    """The object's decompressed bytes, checked (as `checked_size`), and where the text starts
    (after the BOM). Decompressed into one buffer of the checked size: never two copies."""
    size = checked_size(data, gzipped, limits)
    text: bytes | bytearray
    if gzipped:
        text, filled = bytearray(size), 0
        for chunk in _decompressed(data, gzipped, limits.max_object_bytes):
            text[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
    else:
        text = data
    return text, len(_BOM) if text.startswith(_BOM) else 0


def _decompressed(data: bytes, gzipped: bool, limit: int) -> Iterator[bytes]:
    """Chunks of the decompressed object, never more than `limit` + one chunk in all."""
    if not gzipped:
        for start in range(0, len(data), _CHUNK):
            yield data[start : start + _CHUNK]
        return
    produced, rest = 0, data
    while rest:
        stream = zlib.decompressobj(wbits=31)
        pending = rest
        try:
            while pending and not stream.eof:
                chunk = stream.decompress(pending, min(_CHUNK, limit - produced + 1))
                pending = stream.unconsumed_tail
                produced += len(chunk)
                yield chunk
                if produced > limit:
                    return
            if not stream.eof:
                tail = stream.flush()
                produced += len(tail)
                yield tail
                if not stream.eof:
                    raise DeadLetterFile("corrupt gzip: the stream is cut off")
        except zlib.error as error:
            raise DeadLetterFile(f"corrupt gzip: {error}") from None
        # Gzip allows several members one after another, and zero padding after the last.
        rest = stream.unused_data.lstrip(b"\x00")


class _TextCheck:
    """File-level checks on the decompressed stream: size, NUL bytes, UTF-8."""

    def __init__(self, limit: int):
        self.limit, self.size = limit, 0
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes) -> None:
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise DeadLetterFile(f"not text: contains NUL bytes (at offset {self.size + nul})")
        try:
            self.decoder.decode(chunk)
        except UnicodeDecodeError as error:
            raise DeadLetterFile(f"not UTF-8 text: invalid byte near offset {self.size + error.start}") from None
        self.size += len(chunk)
        if self.size > self.limit:
            raise DeadLetterFile(
                f"larger than {self.limit} bytes after decompression (the object limit, GREENSTREAM_MAX_OBJECT_BYTES)")

    def finish(self, gzipped: bool) -> None:
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DeadLetterFile(f"not UTF-8 text: the file ends inside a character (offset {self.size})") from None
        if self.size == 0:
            raise DeadLetterFile("empty file after gzip decompression" if gzipped else "empty object")


def header_positions(header: list[str]) -> dict[str, int]:
    """Column name → index; names trimmed and matched case-insensitively, each exactly once."""
    names = [name.strip().lower() for name in header]
    positions = {}
    for column in REQUIRED_COLUMNS:
        found = [i for i, name in enumerate(names) if name == column]
        if len(found) != 1:
            problem = "missing" if not found else f"present {len(found)} times"
            shown = bounded(",".join(header), 200)
            raise DeadLetterFile(f"header: column {column!r} {problem} (header was {shown!r})")
        positions[column] = found[0]
    return positions


def read_landing_file(
    data: bytes, source_key: str, source_modified_at: datetime, gzipped: bool,
    limits: ReadingLimits = ReadingLimits(), segment_bytes: int = _SEGMENT,
) -> pl.DataFrame:
    """One landing object → its data rows as text (RAW_ROW_COLUMNS), fields trimmed, empty → null.

    `segment_bytes` only tunes memory against per-segment overhead; the rows do not depend on it."""
    text, start = landing_text(data, gzipped, limits)
    del data
    records = _records(text, start, limits, segment_bytes)
    del text
    return _fields(_after_header(records)).with_columns(
        pl.lit(source_key, pl.Utf8).alias("source_key"),
        pl.lit(source_modified_at, RAW_ROW_COLUMNS["source_modified_at"]).alias("source_modified_at"),
    ).select(list(RAW_ROW_COLUMNS))


def _records(text: bytes | bytearray, start: int, limits: ReadingLimits, segment_bytes: int) -> pl.DataFrame:
    """Every record of the file (header included) in line order, one segment at a time.

    A full segment holds at least twice the line limit, so a quoted record still open
    at the end of a full segment that starts with it is necessarily over the limit. A
    segment is cut short before a run of blank lines (which is then only counted), so
    no segment holds millions of empty lines; a record open at the start of a short
    segment is read again in a full one."""
    segment_bytes = max(segment_bytes, 2 * limits.max_line_bytes + 2)
    frames, position, line = [], start, 1
    while position < len(text):
        blank_end = _blank_run_end(text, position)
        if blank_end > position:
            # A run of blank lines is only counted: 100 MiB of newlines costs no frame at all.
            line += text.count(b"\n", position, blank_end)
            position = blank_end
            continue
        end = min(position + segment_bytes, len(text))
        if end < len(text):
            newline = text.rfind(b"\n", position, end)
            if newline < 0:
                # No line ends within a whole segment: this line is longer than the line limit.
                frames.append(_overlong_line(text, position, line, limits))
                newline = text.find(b"\n", position)
                position, line = (len(text) if newline < 0 else newline + 1), line + 1
                continue
            end = newline + 1
        short = _before_blank_run(text, position, end)
        rows, consumed_bytes, consumed_lines = _segment(
            text[position:short].decode("utf-8"), line, short >= len(text), limits, may_stop_at_start=short < end)
        if consumed_lines == 0:
            rows, consumed_bytes, consumed_lines = _segment(
                text[position:end].decode("utf-8"), line, end >= len(text), limits)
        elif short < end and consumed_bytes is None:
            consumed_bytes = short - position
        frames.append(rows)
        position, line = (end if consumed_bytes is None else position + consumed_bytes), line + consumed_lines
    return pl.concat(frames) if frames else pl.DataFrame(schema=_SEGMENT_SCHEMA)


_BLANK_RUNS = (b"\n" * 32, b"\r\n" * 32)  # each ends its first line after len(run) // 32 bytes


def _before_blank_run(text: bytes | bytearray, position: int, end: int) -> int:
    """`end`, or earlier: just after the first line ending of a long run of blank lines."""
    cuts = [at + len(run) // 32 for run in _BLANK_RUNS if (at := text.find(run, position, end)) >= 0]
    return min(cuts) if cuts else end


def _blank_run_end(text: bytes | bytearray, position: int) -> int:
    """End of the blank lines (LF or CRLF and nothing else) starting at `position`, or `position`."""
    run = _LINE_ENDS.match(text, position)
    if run is None:
        return position
    end = run.end()
    if text[end - 1] == 0x0D:  # a CR at the end of the run starts the next line's text
        end -= 1
    # A CR not followed by LF is a character: such a run is not all blank (rare: read it as a segment).
    if text.count(b"\r", position, end) != text.count(b"\r\n", position, end):
        return position
    return end


def _overlong_line(text: bytes | bytearray, position: int, line: int, limits: ReadingLimits) -> pl.DataFrame:
    """A MALFORMED_ROW for a line too long to hold: only its start is decoded and kept, cut as
    any other stored raw line (the same text and marker as a long line read in a segment)."""
    newline = text.find(b"\n", position)
    end = len(text) if newline < 0 else newline - (text[newline - 1] == 0x0D)
    start = text[position : min(end, position + limits.max_stored_chars * 4)].decode("utf-8", "ignore")
    chars = _char_count(text, position, end)
    raw = start[: limits.max_stored_chars] + cut_marker(chars) if chars > limits.max_stored_chars else start
    return pl.DataFrame(
        {"source_line": [line], "line_count": [1], "raw_line": [raw], "malformed": [True], "fields": [None]},
        schema=_SEGMENT_SCHEMA,
    )


def _char_count(text: bytes | bytearray, start: int, end: int) -> int:
    """Characters of valid UTF-8 bytes: every byte but continuation bytes (10xxxxxx), counted by blocks."""
    count = 0
    for block in range(start, end, _SEGMENT):
        view = np.frombuffer(text, np.uint8, min(_SEGMENT, end - block), block)
        count += int(np.count_nonzero((view & 0xC0) != 0x80))
    return count


def _segment(
    text: str, first_line: int, last: bool, limits: ReadingLimits, may_stop_at_start: bool = False,
) -> tuple[pl.DataFrame, int | None, int]:
    """Records of one segment of whole lines → (rows, bytes consumed or None for all, lines consumed).

    Stops early, before a quoted record that is still open at the segment's end,
    so the next segment starts with it."""
    pieces = pl.Series("piece", [text]).str.split("\n").explode(empty_as_null=False)
    if text.endswith("\n"):
        pieces = pieces.slice(0, len(pieces) - 1)  # the empty rest after the last line ending
    # CR is part of the line ending only before LF: not on a last line that has no LF.
    terminated = pl.int_range(pl.len()) < (pl.len() if text.endswith("\n") else pl.len() - 1)
    lines = pl.DataFrame({"piece": pieces}).with_columns(
        (pl.col("piece").str.len_bytes().cast(pl.Int64) + 1).alias("nbytes"),
        pl.when(terminated).then(pl.col("piece").str.strip_suffix("\r")).otherwise(pl.col("piece")).alias("text"),
    ).drop("piece")
    lines = lines.with_columns(
        (pl.col("text").str.len_bytes() > limits.max_line_bytes).alias("too_long"),
    ).with_columns(
        (pl.col("text").str.contains('"', literal=True) & ~pl.col("too_long")).alias("has_quote"),
    )
    count = lines.height
    spans: dict[int, int]  # of _quoted_records: {first line: last line} of multi-line records
    unclosed: set[int]
    spans, unclosed, stop = {}, set(), count
    quoted = np.flatnonzero(lines["has_quote"].to_numpy())
    if quoted.size:
        ends = np.concatenate([[0], np.cumsum(lines["nbytes"].to_numpy())])
        spans, unclosed, stop = _quoted_records(
            lines["text"].gather(quoted).to_list(), quoted.tolist(), ends, limits.max_line_bytes, last,
            may_stop_at_start)
    consumed_bytes = int(lines["nbytes"].head(stop).sum()) if stop < count else None
    lines = lines.head(stop).with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
    del text
    line_count = pl.lit(1, pl.Int64)
    continuation = pl.lit(False)
    if spans:
        starts = pl.Series(list(spans), dtype=pl.Int64)
        last_lines = pl.Series(list(spans.values()), dtype=pl.Int64)
        span_of = pl.DataFrame({"i": starts, "span_end": last_lines})
        lines = lines.join(span_of, on="i", how="left", maintain_order="left")
        covered = np.zeros(stop, dtype=bool)
        for begin, finish in spans.items():
            covered[begin + 1 : finish + 1] = True
        lines = lines.with_columns(pl.Series("continuation", covered))
        joined = {
            begin: "\n".join(lines["text"].slice(begin, finish - begin + 1).to_list())
            for begin, finish in spans.items()
        }
        lines = lines.with_columns(
            pl.when(pl.col("span_end").is_not_null())
            .then(pl.col("i").replace_strict(joined, default=None, return_dtype=pl.Utf8))
            .otherwise(pl.col("text")).alias("text"),
        )
        line_count = (pl.col("span_end").fill_null(pl.col("i")) - pl.col("i") + 1)
        continuation = pl.col("continuation")
    malformed = pl.col("too_long") | pl.col("i").is_in(list(unclosed))
    rows = lines.filter((pl.col("text") != "") & ~continuation).with_columns(
        (pl.col("i") + first_line).alias("source_line"),
        line_count.alias("line_count"),
        malformed.alias("malformed"),
    )
    any_quote = bool(rows["has_quote"].any())
    # Most files hold no quote at all: they skip the quoted-line regex and the unquoting.
    complex_quotes = (pl.col("has_quote") & ~pl.col("malformed") & ~pl.col("text").str.contains(_SIMPLE_QUOTED)
                      if any_quote else pl.lit(False))
    rows = rows.with_columns(complex_quotes.alias("complex"))
    simple = rows.filter(~pl.col("complex")).with_columns(
        pl.when(pl.col("malformed")).then(None).otherwise(
            pl.col("text").str.split(",").list.eval(pl.element().str.strip_prefix('"').str.strip_suffix('"'))
            if any_quote else pl.col("text").str.split(",")
        ).alias("fields"),
    )
    complex_rows = rows.filter(pl.col("complex"))
    if complex_rows.height:
        complex_rows = complex_rows.with_columns(
            pl.Series("fields", [_split_record(t) for t in complex_rows["text"]], dtype=pl.List(pl.Utf8)))
        simple = pl.concat([simple, complex_rows.select(simple.columns)]).sort("i")
    out = simple.select(
        "source_line", "line_count",
        _bounded_expr(pl.col("text"), limits.max_stored_chars).alias("raw_line"),
        "malformed", "fields",
    )
    return out, consumed_bytes, stop


def _bounded_expr(text: pl.Expr, limit: int) -> pl.Expr:
    """`bounded` as an expression: long text cut to `limit` characters with the marker."""
    length = text.str.len_chars()
    return pl.when(length > limit).then(
        pl.concat_str(text.str.slice(0, limit), pl.lit("…[cut: "), length.cast(pl.Utf8), pl.lit(" characters in all]"))
    ).otherwise(text)


def _quoted_records(
    texts: list[str], indices: list[int], ends: np.ndarray, limit: int, last: bool, may_stop_at_start: bool,
) -> tuple[dict[int, int], set[int], int]:
    """Walk the lines holding a quote and find the quoted records that span lines.

    Returns ({first line: last line} of multi-line records, first lines of records
    that never close within the limit, the line to stop the segment at)."""
    spans, unclosed = {}, set()
    count = len(ends) - 1
    k = 0
    while k < len(indices):
        start = indices[k]
        if not _ends_inside(texts[k], False):
            k += 1
            continue
        closed = None
        j = k + 1
        while j < len(indices):
            line = indices[j]
            if ends[line + 1] - ends[start] - 1 > limit:
                break
            if not _ends_inside(texts[j], True):
                closed = line
                break
            j += 1
        if closed is not None:
            spans[start] = closed
            k = j + 1
            continue
        reaches_end = ends[count] - ends[start] - 1 > limit
        if j < len(indices) or reaches_end or last or (start == 0 and not may_stop_at_start):
            # Over the limit or never closed: one malformed row, and reading goes on at the next line.
            unclosed.add(start)
            k += 1
            continue
        return spans, unclosed, start  # may close in the next segment: start it there
    return spans, unclosed, count


def _ends_inside(line: str, inside: bool) -> bool:
    """Whether a line leaves its record inside a quoted field, given the state it starts in."""
    position, size = 0, len(line)
    while True:
        if inside:
            quote = line.find('"', position)
            if quote < 0:
                return True
            if line.startswith('"', quote + 1):
                position = quote + 2
                continue
            inside, position = False, quote + 1
        elif position < size and line[position] == '"':
            inside, position = True, position + 1
            continue
        comma = line.find(",", position)
        if comma < 0:
            return False
        position = comma + 1


def _split_record(record: str) -> list[str]:
    """Fields of a closed record with quotes in it (the same reading as `_ends_inside`)."""
    fields, position, size = [], 0, len(record)
    while True:
        match = _QUOTED_FIELD.match(record, position) if record.startswith('"', position) else None
        if match is not None:
            fields.append(match.group(1).replace('""', '"') + match.group(2))
            position = match.end()
        else:
            comma = record.find(",", position)
            comma = size if comma < 0 else comma
            fields.append(record[position:comma])
            position = comma
        if position >= size:
            return fields
        position += 1
        if position == size:
            fields.append("")
            return fields


def _after_header(records: pl.DataFrame) -> pl.DataFrame:
    """Validate the header (the first record) and keep the data records with column positions."""
    if records.height == 0:
        raise DeadLetterFile("no header row: the file has only blank lines")
    first = records.row(0, named=True)
    if first["malformed"]:
        raise DeadLetterFile(
            f"header: line {first['source_line']} is not a readable header (longer than the line limit, "
            f"or a quote that never closes): {first['raw_line']!r}")
    header = first["fields"]
    positions = header_positions(header)
    rows = records.slice(1)
    return rows.with_columns(
        (~pl.col("malformed") & (pl.col("fields").list.len() == len(header))).fill_null(False).alias("field_count_ok"),
        *[
            pl.col("fields").list.get(index, null_on_oob=True).alias(column)
            for column, index in positions.items()
        ],
    )


def _fields(records: pl.DataFrame) -> pl.DataFrame:
    """Trim every field (SPEC §2) and turn empty ones into null (missing)."""
    return records.with_columns(
        *[
            pl.col(c).str.strip_chars().replace("", None).alias(c)
            for c in REQUIRED_COLUMNS
        ],
    )
