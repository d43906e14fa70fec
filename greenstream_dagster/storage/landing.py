"""The S3 landing zone (SPEC §1): list a partition day's objects, read them, dead-letter them.

Thin on purpose: the landing-key rule (`rules.landing_key`) decides which keys
count, the CSV rules decompress and judge the bytes. Here only S3 happens.
"""

from __future__ import annotations

from datetime import date, timezone

from greenstream_dagster.rules.landing_key import LandingObject, date_folder
from greenstream_dagster.storage.s3 import head_metadata

DEAD_LETTER_PREFIX = "dead-letter/"
_METADATA_LIMIT = 1800  # S3 caps user metadata at 2 KB per object, names included


def list_date_folder(client, bucket: str, day: date) -> list[LandingObject]:
    """Every object under `raw-data/YYYY-MM-DD/`, at any depth, in key order.

    Paginated (S3 returns at most 1,000 keys a page). Keys are not validated
    here: the caller applies `parse_landing_key` and reports what it ignores.
    ETags are given without their surrounding quotes.
    """
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=date_folder(day))
    return [
        LandingObject(
            key=item["Key"],
            size=item["Size"],
            etag=item["ETag"].strip('"'),
            last_modified=item["LastModified"].astimezone(timezone.utc),
        )
        for page in pages
        for item in page.get("Contents", [])
    ]


def date_folder_has_objects(client, bucket: str, day: date) -> bool:
    """Whether anything landed for the day: one key listed, not the whole folder."""
    return client.list_objects_v2(Bucket=bucket, Prefix=date_folder(day), MaxKeys=1).get("KeyCount", 0) > 0


def read_object(client, bucket: str, key: str) -> bytes:
    """The object's stored bytes, as uploaded: a `.csv.gz` stays gzip (the rules judge it)."""
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def put_object(client, bucket: str, key: str, data: bytes, content_type: str | None = None) -> str:
    """Store `data` under `key`; returns the new ETag (unquoted)."""
    extra = {"ContentType": content_type} if content_type else {}
    return client.put_object(Bucket=bucket, Key=key, Body=data, **extra)["ETag"].strip('"')


def dead_letter_key(key: str) -> str:
    return DEAD_LETTER_PREFIX + key


def dead_letter_object(client, bucket: str, key: str, reason: str) -> str:
    """Copy a landing object whole to `dead-letter/<key>` with `reason` in its metadata.

    A copy, not a move: the landing zone stays as delivered (the sensor's view
    of it and any replay depend on that). The reason is also kept in
    PostgreSQL `dead_letter_files` by the caller; in metadata it is shortened
    to fit S3's 2 KB limit and reduced to ASCII (HTTP headers carry it).
    Returns the dead-letter key.
    """
    target = dead_letter_key(key)
    source_key = _header_safe(key, _METADATA_LIMIT)
    source_etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    metadata = {"source-key": source_key, "source-etag": source_etag}
    metadata["reason"] = _header_safe(reason, _METADATA_LIMIT - len(source_key) - len(source_etag))
    if head_metadata(client, bucket, target) == metadata:
        return target  # this very copy is there already: an identical re-run rewrites nothing
    # The managed copy switches to a multipart copy above 5 GB, where copy_object stops.
    client.copy(
        CopySource={"Bucket": bucket, "Key": key},
        Bucket=bucket,
        Key=target,
        ExtraArgs={"MetadataDirective": "REPLACE", "Metadata": metadata},
    )
    return target


def dead_letter_reason(client, bucket: str, dead_key: str) -> str | None:
    """The reason stored on a dead-letter object (None if it has none)."""
    return client.head_object(Bucket=bucket, Key=dead_key).get("Metadata", {}).get("reason")


def _header_safe(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat.encode("ascii", "backslashreplace").decode("ascii")[:limit]
