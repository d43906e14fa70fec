"""The Parquet lake (SPEC §5): hive paths, Snappy, sorted, one atomic object per day."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs
import pyarrow.parquet as pq
import pytest

from greenstream_dagster.rules.meter_shards import route
from greenstream_dagster.rules.schemas import LAKE_READING_COLUMNS, METER_DAILY_COLUMNS
from greenstream_dagster.services import embedded_s3
from greenstream_dagster.storage.lake import (
    lake_day_key,
    lake_day_prefix,
    read_lake_day,
    to_parquet,
    write_lake_day,
    write_lake_day_in_parts,
)

DAY = date(2024, 4, 15)


def readings(day: date = DAY, meters: int = 3, slots: int = 4, value: float = 1.5) -> pl.DataFrame:
    """Scored readings of `meters` meters × `slots` slots, deliberately out of order."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    rows = [
        {
            "record_id": "0" * 64,
            "meter_id": f"SM-{m}",
            "reading_ts": start + timedelta(minutes=15 * s),
            "partition_date": day,
            "value_raw": str(value),
            "unit_raw": "kW",
            "value_kw": value,
            "tariff_period": "OFF_PEAK",
            "season": "SPRING",
            "validation_errors": [],
            "out_of_range": False,
            "revised": False,
            "is_spike": False,
            "meter_stuck": False,
            "meter_gap": False,
            "quality_score": 100,
            "quality_grade": "A",
            "source_key": f"raw-data/{day}/a.csv",
            "source_line": 2 + s * meters + m,
        }
        for s in reversed(range(slots))
        for m in reversed(range(meters))
    ]
    return pl.DataFrame(rows, schema={"record_id": pl.Utf8, **LAKE_READING_COLUMNS})


def meter_daily(day: date = DAY, meters: int = 3) -> pl.DataFrame:
    rows = [
        {
            "meter_id": f"SM-{m}", "date": day, "readings": 96, "usable_readings": 96,
            "energy_kwh": 36.0, "peak_kwh": 6.0, "max_kw": 1.5, "mean_kw": 1.5, "variance_kw2": 0.0,
            "stuck": True, "spike_count": 0, "missing_rate_7d": 0.0, "gap": False, "reliable": False,
            "grade_a": 0, "grade_b": 0, "grade_c": 96, "grade_f": 0, "mean_score": 60.0,
            "estimated_slots": 0, "energy_kwh_estimated": 0.0,
        }
        for m in reversed(range(meters))
    ]
    return pl.DataFrame(rows, schema=METER_DAILY_COLUMNS)


def test_keys_are_hive_paths_with_one_fixed_object_per_day():
    assert lake_day_key("readings", DAY) == "analytics/readings/year=2024/month=04/day=15/part-0.parquet"
    assert lake_day_prefix("meter_daily", date(2024, 1, 2)) == "analytics/meter_daily/year=2024/month=01/day=02/"
    with pytest.raises(ValueError, match="unknown lake table 'scores'"):
        lake_day_key("scores", DAY)


def test_readings_file_is_snappy_sorted_and_holds_exactly_the_contract_columns(s3_client, bucket):
    written = write_lake_day(s3_client, bucket, "readings", DAY, readings())
    assert written.key == lake_day_key("readings", DAY) and written.rows == 12
    body = s3_client.get_object(Bucket=bucket, Key=written.key)["Body"].read()
    assert len(body) == written.bytes
    parquet = pq.ParquetFile(io.BytesIO(body))
    columns = parquet.metadata.row_group(0)
    assert {columns.column(i).compression for i in range(columns.num_columns)} == {"SNAPPY"}
    frame = pl.read_parquet(io.BytesIO(body))
    assert frame.columns == list(LAKE_READING_COLUMNS)  # no record_id, no year/month/day
    assert frame.schema == pl.Schema(LAKE_READING_COLUMNS)
    assert frame.equals(frame.sort("meter_id", "reading_ts"))


def test_meter_daily_is_sorted_by_meter(s3_client, bucket):
    write_lake_day(s3_client, bucket, "meter_daily", DAY, meter_daily())
    frame = read_lake_day(s3_client, bucket, "meter_daily", DAY)
    assert frame.columns == list(METER_DAILY_COLUMNS)
    assert frame["meter_id"].to_list() == ["SM-0", "SM-1", "SM-2"]


def test_a_rerun_replaces_the_day_and_removes_strays(s3_client, bucket):
    write_lake_day(s3_client, bucket, "readings", DAY, readings(meters=5))
    stray = lake_day_prefix("readings", DAY) + "part-00001-old-layout.parquet"
    s3_client.put_object(Bucket=bucket, Key=stray, Body=to_parquet("readings", DAY, readings()))
    other_day = write_lake_day(s3_client, bucket, "readings", DAY + timedelta(1), readings(DAY + timedelta(1)))

    write_lake_day(s3_client, bucket, "readings", DAY, readings(meters=2, value=2.5))

    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="analytics/readings/")["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted([lake_day_key("readings", DAY), other_day.key])
    day = read_lake_day(s3_client, bucket, "readings", DAY)
    assert day.height == 8 and day["value_kw"].unique().to_list() == [2.5]


def test_a_day_never_written_reads_as_empty(s3_client, bucket):
    assert read_lake_day(s3_client, bucket, "readings", DAY).height == 0


def test_rows_of_another_day_are_refused(s3_client, bucket):
    with pytest.raises(ValueError, match="partition_date other than 2024-04-16"):
        write_lake_day(s3_client, bucket, "readings", DAY + timedelta(1), readings())
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)


def test_missing_contract_columns_are_named(s3_client, bucket):
    with pytest.raises(ValueError, match=r"lacks contract columns \['mean_score'\]"):
        write_lake_day(s3_client, bucket, "meter_daily", DAY, meter_daily().drop("mean_score"))


def test_readable_through_the_s3_endpoint_with_hive_partitioning(s3_client, s3_endpoint_url, bucket):
    for offset in range(3):
        day = DAY + timedelta(offset)
        write_lake_day(s3_client, bucket, "readings", day, readings(day))
        write_lake_day(s3_client, bucket, "meter_daily", day, meter_daily(day))

    filesystem = pyarrow.fs.S3FileSystem(
        endpoint_override=s3_endpoint_url,
        access_key=embedded_s3.ACCESS_KEY_ID,
        secret_key=embedded_s3.SECRET_ACCESS_KEY,
        region=embedded_s3.REGION,
    )
    dataset = ds.dataset(f"{bucket}/analytics/readings", filesystem=filesystem, format="parquet", partitioning="hive")
    table = dataset.to_table(filter=(ds.field("day") == 16))
    assert table.num_rows == 12
    assert set(table.column("partition_date").to_pylist()) == {date(2024, 4, 16)}

    storage_options = {
        "aws_endpoint_url": s3_endpoint_url,
        "aws_access_key_id": embedded_s3.ACCESS_KEY_ID,
        "aws_secret_access_key": embedded_s3.SECRET_ACCESS_KEY,
        "aws_region": embedded_s3.REGION,
        "aws_allow_http": "true",
    }
    daily = (
        pl.scan_parquet(
            f"s3://{bucket}/analytics/meter_daily/**/*.parquet",
            hive_partitioning=True,
            storage_options=storage_options,
        )
        .filter(pl.col("month") == 4)
        .collect()
    )
    assert daily.height == 9
    assert set(daily.columns) == set(METER_DAILY_COLUMNS) | {"year", "month", "day"}
    assert daily.group_by("day").len().sort("day")["len"].to_list() == [3, 3, 3]


def test_a_realistic_day_stays_well_under_30_percent_of_its_csv():
    meters, slots = 500, 96
    frame = readings(meters=meters, slots=slots).with_columns(
        value_raw=(pl.int_range(pl.len()) * 7919 % 5000).cast(pl.Utf8),
    ).with_columns(value_kw=pl.col("value_raw").cast(pl.Float64) / 1000, unit_raw=pl.lit("W"))
    csv = frame.select(
        "meter_id", pl.col("reading_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "value_raw", "unit_raw"
    ).write_csv()
    assert len(to_parquet("readings", DAY, frame)) < 0.30 * len(csv.encode())


def _object(s3_client, bucket: str, key: str) -> tuple[str, object]:
    head = s3_client.head_object(Bucket=bucket, Key=key)
    return head["ETag"], head["LastModified"]


def test_a_day_in_meter_shards_is_one_object_of_the_same_rows_written_a_shard_at_a_time(s3_client, bucket):
    """SPEC §10: each shard's rows are encoded and let go (the writer asks for one part at a time),
    into the one object readers know; a day computed in other shards is the same rows, so it is
    not written again, and a changed reading in one shard writes the day anew."""
    day = readings(meters=12)
    whole = write_lake_day(s3_client, bucket, "readings", DAY, day)
    before = _object(s3_client, bucket, whole.key)
    parts = route(day, 3)
    asked = []

    def part(index: int) -> pl.DataFrame:
        asked.append(index)
        return parts[index]

    again = write_lake_day_in_parts(s3_client, bucket, "readings", DAY, 3, part)

    assert asked == [0, 1, 2] and again.rows == day.height and not again.rewritten
    assert _object(s3_client, bucket, whole.key) == before
    first_line = parts[1]["source_line"][0]
    changed = {**parts, 1: parts[1].with_columns(
        value_kw=pl.when(pl.col("source_line") == first_line).then(pl.col("value_kw") + 0.25).otherwise("value_kw"))}
    rewritten = write_lake_day_in_parts(s3_client, bucket, "readings", DAY, 3, changed.__getitem__)
    assert rewritten.rewritten and _object(s3_client, bucket, whole.key) != before
    stored = read_lake_day(s3_client, bucket, "readings", DAY)
    expected = pl.concat([changed[k] for k in range(3)]).select(list(LAKE_READING_COLUMNS))
    assert stored.sort("meter_id", "reading_ts").equals(expected.sort("meter_id", "reading_ts"))
    assert pq.ParquetFile(io.BytesIO(s3_client.get_object(Bucket=bucket, Key=whole.key)["Body"].read())
                          ).metadata.num_row_groups == 3  # a row group per shard, each sorted
    assert [k["Key"] for k in s3_client.list_objects_v2(Bucket=bucket, Prefix=lake_day_prefix("readings", DAY))
            ["Contents"]] == [whole.key]


def test_an_empty_shard_still_gives_a_readable_day(s3_client, bucket):
    empty = readings(meters=2).clear()
    written = write_lake_day_in_parts(s3_client, bucket, "readings", DAY, 2, lambda k: readings(meters=2) if k else empty)
    assert written.rows == 8
    assert read_lake_day(s3_client, bucket, "readings", DAY).height == 8
