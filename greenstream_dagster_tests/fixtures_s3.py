"""S3 fixtures: one real embedded SeaweedFS per test session, a fresh bucket per test.

No mocks: the same server, client factory and signed requests as production.
`s3_env` gives the SPEC §8 variables pointing at the session server and the
test's bucket, for code that reads its settings from the environment.
"""

from __future__ import annotations

import uuid

import pytest

from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.embedded_s3 import EmbeddedS3
from greenstream_dagster.storage.s3 import make_s3_client

__all__ = ["s3_server", "s3_endpoint_url", "s3_client", "bucket", "s3_env"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = EmbeddedS3(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint_url(s3_server) -> str:
    return s3_server.endpoint_url


@pytest.fixture(scope="session")
def s3_client(s3_endpoint_url):
    return make_s3_client(
        s3_endpoint_url, embedded_s3.ACCESS_KEY_ID, embedded_s3.SECRET_ACCESS_KEY, embedded_s3.REGION
    )


@pytest.fixture
def bucket(s3_client):
    """A new, empty bucket for this test; deleted with its contents afterwards."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    delete_bucket(s3_client, name)


@pytest.fixture
def s3_env(s3_endpoint_url, bucket) -> dict[str, str]:
    return {
        "GREENSTREAM_S3_ENDPOINT_URL": s3_endpoint_url,
        "GREENSTREAM_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": embedded_s3.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": embedded_s3.SECRET_ACCESS_KEY,
        "AWS_REGION": embedded_s3.REGION,
    }


def delete_bucket(client, name: str) -> None:
    # Deleting the bucket frees its SeaweedFS collection (and volume slots) for later tests.
    # SeaweedFS deletes a non-empty bucket with its contents; other servers need emptying first.
    try:
        client.delete_bucket(Bucket=name)
        return
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketNotEmpty":
            raise
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
    keys = [{"Key": item["Key"]} for page in pages for item in page.get("Contents", [])]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=name, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
    client.delete_bucket(Bucket=name)
