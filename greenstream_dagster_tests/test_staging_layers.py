"""Staged frames a re-run changes in part are written as a layer on the frame before
(storage/staging.py). Real embedded S3; every frame is read back as another process reads it
(nothing kept in memory) and compared with the frame the writer had in memory."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from greenstream_dagster.storage import staging
from greenstream_dagster.storage.staging import Change, layer_key, staging_key

DAY = date(2024, 4, 16)
ASSET, NAME = "scored_readings", "readings"


def readings(meters: list[str], value: float, slots: int = 4) -> pl.DataFrame:
    """`slots` readings per meter, in order of meter and slot."""
    return pl.DataFrame({
        "meter_id": [m for m in sorted(meters) for _ in range(slots)],
        "slot": [s for _ in meters for s in range(slots)],
        "value_kw": [value] * (len(meters) * slots),
    })


def replace_meters(frame: pl.DataFrame, redone: pl.DataFrame, meters: list[str]) -> pl.DataFrame:
    """What the platform holds after redoing `meters`: computed here without staging."""
    kept = frame.filter(~pl.col("meter_id").is_in(meters))
    return pl.concat([kept, redone]).sort("meter_id", "slot")


def read_back(s3_client, bucket, **kwargs) -> pl.DataFrame | None:
    staging.forget_kept_frames()
    return staging.read_frame(s3_client, bucket, ASSET, DAY, NAME, **kwargs)


def exists(s3_client, bucket, key: str) -> bool:
    return s3_client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


METERS = [f"SM-{k:03d}" for k in range(40)]


def test_a_small_change_is_a_layer_and_reads_back_as_the_whole_frame(s3_client, bucket):
    base = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, base)
    base_etag = s3_client.head_object(Bucket=bucket, Key=staging_key(ASSET, DAY, NAME))["ETag"]

    redone = readings(["SM-003", "SM-017", "SM-900"], 2.0)  # two meters redone, one new
    after = replace_meters(base, redone, ["SM-003", "SM-017", "SM-900"])
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, after,
                        change=Change("meter_id", pl.Series(["SM-003", "SM-017", "SM-900"]), redone, "meter_id"))

    assert s3_client.head_object(Bucket=bucket, Key=staging_key(ASSET, DAY, NAME))["ETag"] == base_etag  # untouched
    assert exists(s3_client, bucket, layer_key(ASSET, DAY, NAME))
    back = read_back(s3_client, bucket)
    assert back.equals(after)
    assert back["meter_id"].flags["SORTED_ASC"]  # in order of meter, as written
    assert read_back(s3_client, bucket, columns=["meter_id", "value_kw"],
                     where=pl.col("value_kw") > 1.5).equals(after.filter(pl.col("value_kw") > 1.5).drop("slot"))


def test_layers_accumulate_and_a_meter_can_disappear(s3_client, bucket):
    frame = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame)
    for step, meters in enumerate([["SM-001", "SM-002"], ["SM-002", "SM-030"], ["SM-005"]], start=2):
        gone = meters[-1] == "SM-005"  # the last change removes SM-005's readings altogether
        redone = readings(meters, float(step)).filter(pl.lit(not gone))
        frame = replace_meters(frame, redone, meters)
        staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame,
                            change=Change("meter_id", pl.Series(meters), redone, "meter_id"))
        assert read_back(s3_client, bucket).equals(frame), f"after change {step - 1}"
    assert "SM-005" not in frame["meter_id"].to_list()
    assert frame.filter(pl.col("meter_id") == "SM-002")["value_kw"].unique().to_list() == [3.0]


def test_a_large_change_writes_the_frame_whole_and_removes_the_layer(s3_client, bucket):
    frame = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame)
    small = ["SM-010"]
    frame = replace_meters(frame, readings(small, 2.0), small)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame,
                        change=Change("meter_id", pl.Series(small), readings(small, 2.0), "meter_id"))
    assert exists(s3_client, bucket, layer_key(ASSET, DAY, NAME))

    large = METERS[: int(len(METERS) * staging.LAYER_SHARE) + 2]  # more than the share of the rows
    frame = replace_meters(frame, readings(large, 3.0), large)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame,
                        change=Change("meter_id", pl.Series(large), readings(large, 3.0), "meter_id"))
    assert not exists(s3_client, bucket, layer_key(ASSET, DAY, NAME))
    assert read_back(s3_client, bucket).equals(frame)


def test_rows_outside_the_replaced_values_are_never_layered(s3_client, bucket):
    """A change whose rows hold a value it does not replace would repeat rows of the base."""
    frame = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame)
    redone = readings(["SM-001", "SM-002"], 2.0)
    after = replace_meters(frame, redone, ["SM-001", "SM-002"])
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, after,
                        change=Change("meter_id", pl.Series(["SM-001"]), redone, "meter_id"))
    assert not exists(s3_client, bucket, layer_key(ASSET, DAY, NAME))
    assert read_back(s3_client, bucket).equals(after)


def test_unsorted_frames_are_layered_in_the_order_they_were_built(s3_client, bucket):
    """Raw rows: the rows of unchanged objects first, then those read again (by source_key)."""
    rows = pl.DataFrame({"source_key": ["b", "a", "b", "c", "a"], "line": [1, 1, 2, 1, 2]})
    staging.write_frame(s3_client, bucket, "raw_readings", DAY, "rows", rows)
    fresh = pl.DataFrame({"source_key": ["d", "a"], "line": [1, 1]})  # a replaced, c removed, d new
    after = pl.concat([rows.filter(pl.col("source_key") == "b"), fresh])
    staging.write_frame(s3_client, bucket, "raw_readings", DAY, "rows", after,
                        change=Change("source_key", pl.Series(["a", "c", "d"]), fresh))
    staging.forget_kept_frames()
    assert staging.read_frame(s3_client, bucket, "raw_readings", DAY, "rows").equals(after)


def test_a_layer_on_another_base_reads_as_never_staged(s3_client, bucket):
    """A whole write cut short after the base, before the layer was removed: no frame is made of
    the new base and the old layer (its next writer builds it whole)."""
    frame = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame)
    redone = readings(["SM-001"], 2.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, replace_meters(frame, redone, ["SM-001"]),
                        change=Change("meter_id", pl.Series(["SM-001"]), redone, "meter_id"))
    s3_client.put_object(Bucket=bucket, Key=staging_key(ASSET, DAY, NAME), Body=staging.encode(readings(METERS, 5.0)))
    assert read_back(s3_client, bucket) is None


@pytest.mark.parametrize("kept", [True, False], ids=["kept in memory", "read from S3"])
def test_a_frame_deleted_is_gone_with_its_layer(s3_client, bucket, kept):
    frame = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame)
    redone = readings(["SM-001"], 2.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, replace_meters(frame, redone, ["SM-001"]),
                        change=Change("meter_id", pl.Series(["SM-001"]), redone, "meter_id"))
    if not kept:
        staging.forget_kept_frames()
    staging.delete_frame(s3_client, bucket, ASSET, DAY, NAME)
    assert staging.read_frame(s3_client, bucket, ASSET, DAY, NAME) is None
    assert not exists(s3_client, bucket, layer_key(ASSET, DAY, NAME))


@pytest.mark.parametrize("layered", [False, True], ids=["whole", "layered"])
def test_a_frame_read_whole_and_replaced_since_is_read_again(s3_client, bucket, layered):
    """Frames read whole are kept in memory for the next steps, but never served once replaced."""
    frame = readings(METERS, 1.0)
    staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame)
    if layered:
        redone = readings(["SM-001"], 2.0)
        frame = replace_meters(frame, redone, ["SM-001"])
        staging.write_frame(s3_client, bucket, ASSET, DAY, NAME, frame,
                            change=Change("meter_id", pl.Series(["SM-001"]), redone, "meter_id"))
    assert read_back(s3_client, bucket).equals(frame)
    assert staging.read_frame(s3_client, bucket, ASSET, DAY, NAME).equals(frame)  # kept in memory
    s3_client.delete_object(Bucket=bucket, Key=layer_key(ASSET, DAY, NAME))  # another process writes whole
    replaced = readings(METERS, 7.0)
    s3_client.put_object(Bucket=bucket, Key=staging_key(ASSET, DAY, NAME), Body=staging.encode(replaced))
    assert staging.read_frame(s3_client, bucket, ASSET, DAY, NAME).equals(replaced)
