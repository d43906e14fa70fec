"""The one way the platform builds an S3 client (SPEC §7: S3 through an endpoint URL).

The same client serves AWS, MinIO and the embedded SeaweedFS, so it is built
for the lowest common denominator: path-style addressing (no per-bucket DNS on
a local endpoint), SigV4, and checksums only where an operation requires them
(the newer default CRC headers are not understood by every S3-compatible
server). Retries use botocore's standard mode with bounded timeouts so a dead
endpoint fails in seconds, not minutes; the Dagster steps add their own
retry policy on top (SPEC §6).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol

import boto3
import botocore.loaders
import botocore.session
import botocore.utils
from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 60
MAX_ATTEMPTS = 5
MAX_POOL_CONNECTIONS = 32  # uploads and listings run on thread pools of up to this size


class S3Location(Protocol):
    """Where S3 is and how to sign for it: a ResolvedServices or a Settings."""

    s3_endpoint_url: str | None
    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    aws_region: str


def _parse_timestamp(value):
    """ISO-8601 as S3 sends it, parsed by the standard library; dateutil only for other forms.

    Listing 50,000 keys spends most of its time in botocore's default
    (dateutil) parser of LastModified; this halves the sensor's listing time.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return botocore.utils.parse_timestamp(value)


# botocore's service descriptions (JSON), read once per process: each session would
# otherwise load and parse them again, ~0.1 s per client and a second and more per run.
_SERVICE_DATA = botocore.loaders.create_loader()


def _fast_botocore_session():
    """A fresh botocore session per client (boto3's default one is not thread-safe)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _SERVICE_DATA)
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_parse_timestamp)
    return session


def make_s3_client(
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
    max_pool_connections: int = MAX_POOL_CONNECTIONS,
):
    """A boto3 S3 client; with no credentials, boto3's own chain (profile, instance role) signs."""
    config = Config(
        region_name=region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(botocore_session=_fast_botocore_session())
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def s3_client(location: S3Location, **options):
    """The client for a resolved service set (or settings); `options` as for make_s3_client."""
    return make_s3_client(
        location.s3_endpoint_url,
        location.aws_access_key_id,
        location.aws_secret_access_key,
        location.aws_region,
        **options,
    )


def head_metadata(client, bucket: str, key: str) -> dict[str, str] | None:
    """The object's user metadata (x-amz-meta-*), or None when there is no such object."""
    try:
        return client.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
