"""A storage fault that outlives its retries is named in one bounded line (issue 8, SPEC §7)."""

from __future__ import annotations

import botocore.exceptions
import psycopg
import pytest

from greenstream_dagster.services.service_faults import one_line, storage_fault

ENDPOINT = "http://s3.internal:9000"
DATABASE = "postgresql://greenstream:pa%2F55@db.internal:6432/greenstream"


def _client_error(code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "x"}}, "GetObject")


@pytest.mark.parametrize("error, expected", [
    (botocore.exceptions.EndpointConnectionError(endpoint_url=f"{ENDPOINT}/b/k"),
     "GREENSTREAM_S3_ENDPOINT_URL: no S3 server answers at http://s3.internal:9000 (EndpointConnectionError)"),
    (botocore.exceptions.ConnectTimeoutError(endpoint_url=f"{ENDPOINT}/b/k"),
     "GREENSTREAM_S3_ENDPOINT_URL: no S3 server answers at http://s3.internal:9000 (ConnectTimeoutError)"),
    (_client_error("SignatureDoesNotMatch"),
     "AWS_SECRET_ACCESS_KEY: http://s3.internal:9000 rejected the request signature: the secret does not match AWS_ACCESS_KEY_ID"),
    (_client_error("InvalidAccessKeyId"), "AWS_ACCESS_KEY_ID: http://s3.internal:9000 does not know this access key"),
    (_client_error("NoSuchBucket"), "GREENSTREAM_BUCKET: bucket 'landing' does not exist on http://s3.internal:9000"),
    (psycopg.OperationalError('connection to server at "db.internal", port 6432 failed: Connection refused'),
     "GREENSTREAM_DATABASE_URL: PostgreSQL at db.internal:6432 refused the connection (nothing listens there)"),
    (psycopg.OperationalError('FATAL:  password authentication failed for user "greenstream"'),
     "GREENSTREAM_DATABASE_URL: PostgreSQL at db.internal:6432 refused user 'greenstream': wrong password, "
     "or the user may not connect"),
    (psycopg.OperationalError('FATAL:  database "greenstream" does not exist'),
     "GREENSTREAM_DATABASE_URL: PostgreSQL at db.internal:6432 has no database 'greenstream'"),
])
def test_the_line_names_the_setting(error, expected):
    assert storage_fault(error, endpoint_url=ENDPOINT, bucket="landing", database_url=DATABASE) == expected


def test_an_embedded_service_is_named_as_unset_with_its_address():
    error = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:4444/landing/k")
    assert storage_fault(error, endpoint_url=None, bucket="landing", database_url=None) == (
        "GREENSTREAM_S3_ENDPOINT_URL (unset): no S3 server answers at the embedded S3 at 127.0.0.1:4444 "
        "(EndpointConnectionError)")


def test_a_servers_words_are_bounded_escaped_and_never_hold_the_password():
    hostile = "weird failure pa/55 " + "\x1b[31m" + "fake\n2024-01-01 INFO forged line " + "x" * 10_000
    line = storage_fault(psycopg.OperationalError(hostile), endpoint_url=None, bucket="landing", database_url=DATABASE)
    assert line.startswith("GREENSTREAM_DATABASE_URL: PostgreSQL at db.internal:6432 failed: weird failure *** ")
    assert "\n" not in line and "\x1b" not in line and "\\x1b" in line
    assert line.endswith("…[cut]") and len(line) < 400


def test_one_line_keeps_short_text_as_it_is():
    assert one_line("  a\tb \n c ") == "a b c"
