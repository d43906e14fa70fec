"""The S3 landing zone adapter (SPEC §1) against the real embedded server."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.storage.landing import (
    dead_letter_object,
    dead_letter_reason,
    list_date_folder,
    put_object,
    read_object,
)

DAY = date(2024, 4, 15)
CSV = b"meter_id,timestamp,value,unit\nSM-48291,2024-04-15T18:45:00Z,3250,W\n"


def test_round_trip_keeps_the_bytes(s3_client, bucket):
    key = "raw-data/2024-04-15/a.csv"
    etag = put_object(s3_client, bucket, key, CSV)
    assert read_object(s3_client, bucket, key) == CSV
    [listed] = list_date_folder(s3_client, bucket, DAY)
    assert listed == LandingObject(key=key, size=len(CSV), etag=etag, last_modified=listed.last_modified)
    assert not etag.startswith('"')
    assert listed.last_modified.tzinfo == timezone.utc
    assert abs((datetime.now(timezone.utc) - listed.last_modified).total_seconds()) < 300


def test_gzip_objects_are_read_as_stored_not_decompressed(s3_client, bucket):
    key = "raw-data/2024-04-15/batch/b.csv.gz"
    packed = gzip.compress(CSV)
    put_object(s3_client, bucket, key, packed)
    assert read_object(s3_client, bucket, key) == packed


def test_lists_every_key_at_any_depth_of_the_date_folder_only(s3_client, bucket):
    keys = [
        "raw-data/2024-04-15/a.csv",
        "raw-data/2024-04-15/x/y/z/deep.csv.gz",
        "raw-data/2024-04-15/notes.txt",  # listed: the caller's landing-key rule reports it
        "raw-data/2024-04-16/other-day.csv",
        "raw-data/2024-04-1/short.csv",
    ]
    for key in keys:
        put_object(s3_client, bucket, key, CSV)
    listed = [obj.key for obj in list_date_folder(s3_client, bucket, DAY)]
    assert listed == sorted(keys[:3])


def test_an_empty_date_folder_lists_nothing(s3_client, bucket):
    assert list_date_folder(s3_client, bucket, DAY) == []


def test_listing_pages_beyond_1000_objects(s3_client, bucket):
    keys = [f"raw-data/2024-04-15/part-{i:05d}.csv" for i in range(1_100)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda key: s3_client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    listed = list_date_folder(s3_client, bucket, DAY)
    assert [obj.key for obj in listed] == keys
    assert {obj.size for obj in listed} == {1}


def test_dead_letter_copies_the_object_with_its_reason_and_keeps_the_original(s3_client, bucket):
    key = "raw-data/2024-04-15/broken.csv.gz"
    corrupt = b"\x1f\x8b\x08\x00 not really gzip"
    put_object(s3_client, bucket, key, corrupt)
    reason = "corrupt gzip: Error -3 while decompressing — header check"
    dead = dead_letter_object(s3_client, bucket, key, reason)
    assert dead == "dead-letter/raw-data/2024-04-15/broken.csv.gz"
    assert read_object(s3_client, bucket, dead) == corrupt
    assert read_object(s3_client, bucket, key) == corrupt  # the landing copy stays
    stored = dead_letter_reason(s3_client, bucket, dead)
    assert stored.startswith("corrupt gzip: Error -3 while decompressing")
    assert stored.isascii()
    head = s3_client.head_object(Bucket=bucket, Key=dead)
    assert head["Metadata"]["source-key"] == key


def test_dead_letter_reason_is_cut_to_fit_s3_metadata(s3_client, bucket):
    key = "raw-data/2024-04-15/long.csv"
    put_object(s3_client, bucket, key, CSV)
    dead = dead_letter_object(s3_client, bucket, key, "wrong header " * 1000)
    assert len(dead_letter_reason(s3_client, bucket, dead)) < 2000
