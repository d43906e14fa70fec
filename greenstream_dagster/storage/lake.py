"""The analytics data lake (SPEC §5): one Snappy Parquet object per table and day.

Layout: `analytics/<table>/year=YYYY/month=MM/day=DD/part-0.parquet`, readable
by any hive-partitioned reader (pyarrow.dataset, polars, Spark, Athena).

Atomic per day: the whole day is one object with a fixed name, written by a
single PUT (multipart above 64 MB). S3 makes an object visible only once it is
complete, so a reader sees the old day or the new one, never half. A day staged
in meter shards (SPEC §10) is encoded shard by shard into that one object (a
row group or more per shard, spooled to a local file), so no process holds the
day and the object stays the one readers know: no table format is needed. A
re-run overwrites the same key, unless the object holds these very rows already
(an identical re-run rewrites nothing, whatever the number of shards); only
after it succeeded are other objects in the day's folder (strays of an older
layout or a manual copy) deleted.

Columns are exactly the contract's (SPEC §8): `LAKE_READING_COLUMNS` for
readings, `METER_DAILY_COLUMNS` for meter_daily, `ESTIMATE_COLUMNS` for
`analytics/estimated/` (SPEC §3b). The day therefore appears
twice: as `partition_date` / `date` in the file body, and as year/month/day in
the path. That duplication is deliberate: the body column keeps a file
self-describing when copied or read without hive discovery and matches the
operational store's column; it costs a few bytes (a constant column is one
dictionary entry). The hive keys are *not* written into the body, because
readers that add them from the path would then see the column twice.

Compression: rows sorted by meter then time (within each shard's row groups) so runs are long; dictionary
encoding with a larger dictionary page (values repeat across meters, and the
default 1 MB page falls back to plain encoding early); delta encoding for the
time and line columns; one row group per million rows with statistics, so
readers can skip by meter_id and reading_ts.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from boto3.s3.transfer import TransferConfig

from greenstream_dagster.rules.reading_order import sorted_by
from greenstream_dagster.rules.schemas import ESTIMATE_COLUMNS, LAKE_READING_COLUMNS, METER_DAILY_COLUMNS
from greenstream_dagster.rules.silent_meters import SILENT_COLUMNS
from greenstream_dagster.storage.s3 import head_metadata

LAKE_PREFIX = "analytics/"
PART_NAME = "part-0.parquet"
ROW_GROUP_ROWS = 1_000_000
DICTIONARY_PAGE_BYTES = 8 * 1024 * 1024

TABLES: dict[str, dict[str, pl.DataType]] = {
    "readings": LAKE_READING_COLUMNS,
    "meter_daily": METER_DAILY_COLUMNS,
    "silent_meters": SILENT_COLUMNS,  # SPEC §3a, beside meter_daily
    "estimated": ESTIMATE_COLUMNS,  # SPEC §3b: estimates of short gaps, apart from the readings
}
_SORT_KEYS = {"readings": ["meter_id", "reading_ts"], "meter_daily": ["meter_id"], "silent_meters": ["meter_id"],
              "estimated": ["meter_id", "slot_ts"]}
_DAY_COLUMN = {"readings": "partition_date", "meter_daily": "date", "silent_meters": "partition_date",
               "estimated": "partition_date"}
# Monotonic or near-monotonic integers within a meter: deltas are tiny.
_DELTA_COLUMNS = {"readings": ["reading_ts", "source_line"], "meter_daily": [], "silent_meters": [],
                  "estimated": ["slot_ts", "from_reading_ts", "to_reading_ts"]}

# User metadata of every lake object: a digest of its rows (_RowsDigest). An identical re-run
# keeps the object (same ETag and last-modified time), so readers and caches see no change
# (SPEC §5), also when the day was computed in another number of shards; a multipart upload's
# ETag is no content hash, hence a digest of our own.
ROWS_DIGEST = "rows-digest"
_ROWS_DIGEST_FORMAT = f"v1 polars {pl.__version__}"

_TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)


@dataclass(frozen=True)
class LakeWrite:
    """What one day's write left in the lake."""

    key: str
    bytes: int
    rows: int
    rewritten: bool = True  # False: the stored object had these very bytes and was kept


def lake_day_prefix(table: str, day: date) -> str:
    _check_table(table)
    return f"{LAKE_PREFIX}{table}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}/"


def lake_day_key(table: str, day: date) -> str:
    """The one object that holds `table` for `day`."""
    return lake_day_prefix(table, day) + PART_NAME


def to_parquet(table: str, day: date, frame: pl.DataFrame) -> bytes:
    """The day's Parquet bytes: contract columns, sorted, Snappy. Raises ValueError naming the problem."""
    buffer = io.BytesIO()
    _write_parts(buffer, table, day, 1, lambda _: frame, _RowsDigest())
    return buffer.getvalue()


def write_lake_day(client, bucket: str, table: str, day: date, frame: pl.DataFrame) -> LakeWrite:
    """Replace `table`'s day atomically with `frame`; returns the key, its size and row count.

    The caller chooses the rows (for readings: those graded A–C, SPEC §5);
    extra columns such as `record_id` are dropped here.
    """
    return write_lake_day_in_parts(client, bucket, table, day, 1, lambda _: frame)


def write_lake_day_in_parts(client, bucket: str, table: str, day: date, parts: int,
                            read_part: Callable[[int], pl.DataFrame]) -> LakeWrite:
    """Replace `table`'s day atomically with the rows of its `parts` parts (meter shards, SPEC
    §10), read one at a time by `read_part`: each is encoded into the day's one object as row
    groups of its own and let go, so the process holds one part, never the day. The object is
    spooled to a local file, then uploaded in one PUT (multipart: S3 shows it only once complete),
    unless the stored object holds these very rows already."""
    key = lake_day_key(table, day)
    digest = _RowsDigest()
    with tempfile.TemporaryFile() as spool:
        rows = _write_parts(spool, table, day, parts, read_part, digest)
        size = spool.tell()
        unchanged = (head_metadata(client, bucket, key) or {}).get(ROWS_DIGEST) == digest.value
        if not unchanged:
            spool.seek(0)
            client.upload_fileobj(spool, bucket, key, Config=_TRANSFER,
                                  ExtraArgs={"ContentType": "application/vnd.apache.parquet",
                                             "Metadata": {ROWS_DIGEST: digest.value}})
    _delete_strays(client, bucket, lake_day_prefix(table, day), keep=key)
    return LakeWrite(key=key, bytes=size, rows=rows, rewritten=not unchanged)


def _write_parts(sink, table: str, day: date, parts: int, read_part: Callable[[int], pl.DataFrame],
                 digest: _RowsDigest) -> int:
    """Encode the parts into `sink` as one Parquet file; returns its rows (digested on the way)."""
    rows = 0
    with pq.ParquetWriter(sink, _arrow_schema(table), **_WRITER_OPTIONS[table]) as writer:
        for index in range(parts):
            shaped = _shaped(table, day, read_part(index))
            digest.add(shaped)
            # In one chunk: the same rows give the same row groups however the frame was put
            # together (Arrow writes a row group per chunk).
            writer.write_table(sorted_by(shaped, _SORT_KEYS[table]).rechunk().to_arrow(), row_group_size=ROW_GROUP_ROWS)
            rows += shaped.height
    return rows


def _shaped(table: str, day: date, frame: pl.DataFrame) -> pl.DataFrame:
    """The contract's columns in its order and dtypes; a missing column or a row of another day is
    a ValueError naming the problem."""
    columns = TABLES[_check_table(table)]
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"lake {table} {day}: the frame lacks contract columns {missing}")
    shaped = frame.select([pl.col(name).cast(dtype) for name, dtype in columns.items()])
    wrong_day = shaped.filter(pl.col(_DAY_COLUMN[table]).ne_missing(day)).height
    if wrong_day:
        raise ValueError(f"lake {table} {day}: {wrong_day} rows have a {_DAY_COLUMN[table]} other than {day}")
    return shaped


def _arrow_schema(table: str) -> pa.Schema:
    return pl.DataFrame(schema=TABLES[_check_table(table)]).to_arrow().schema


def _writer_options(table: str) -> dict:
    delta = _DELTA_COLUMNS[table]
    return {
        "compression": "snappy",
        "use_dictionary": [name for name in TABLES[table] if name not in delta],
        "column_encoding": {name: "DELTA_BINARY_PACKED" for name in delta} or None,
        "dictionary_pagesize_limit": DICTIONARY_PAGE_BYTES,
        "write_statistics": True,
        "store_schema": True,
    }


_WRITER_OPTIONS = {table: _writer_options(table) for table in TABLES}


class _RowsDigest:
    """What the lake object holds, whatever its row order and row groups: the rows counted, and
    two 64-bit hashes of every row summed in 32-bit halves. A day split in other shards (its rows
    in another order) digests alike, so it is not written again; a changed day digests alike
    only with a chance of about 2⁻¹²⁸. Hashes of another Polars version may differ: then the
    day is written once again (the format is part of the value)."""

    def __init__(self) -> None:
        self._rows = 0
        self._sums = [0, 0, 0, 0]

    def add(self, frame: pl.DataFrame) -> None:
        self._rows += frame.height
        if not frame.height:
            return
        for k, seed in enumerate((0, 4)):
            hashed = frame.hash_rows(seed=seed, seed_1=seed + 1, seed_2=seed + 2, seed_3=seed + 3)
            self._sums[2 * k] += int((hashed & 0xFFFFFFFF).sum())
            self._sums[2 * k + 1] += int((hashed // 2**32).sum())

    @property
    def value(self) -> str:
        return f"{_ROWS_DIGEST_FORMAT} {self._rows} " + " ".join(f"{s:x}" for s in self._sums)


def read_lake_day(client, bucket: str, table: str, day: date) -> pl.DataFrame:
    """The day as stored (an empty frame of the contract when the day was never written)."""
    key = lake_day_key(table, day)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return pl.DataFrame(schema=TABLES[table])
    return pl.read_parquet(io.BytesIO(body))


def _delete_strays(client, bucket: str, prefix: str, keep: str) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    strays = [item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"] != keep]
    for start in range(0, len(strays), 1000):  # DeleteObjects takes at most 1,000 keys
        batch = [{"Key": key} for key in strays[start : start + 1000]]
        result = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if result.get("Errors"):
            failed = ", ".join(f"{e['Key']} ({e.get('Code')})" for e in result["Errors"][:5])
            raise RuntimeError(f"lake {prefix}: written, but stray objects could not be deleted: {failed}")


def _check_table(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown lake table {table!r}; expected one of {sorted(TABLES)}")
    return table
