"""SPEC §6: storage steps retry 3 times after 2 s, 4 s and 8 s; data errors do not retry."""

import botocore.exceptions
import dagster as dg
import psycopg
import pytest

from greenstream_dagster.defs.policies import MAX_RETRIES, backoff_seconds, retry_storage_faults


class Context:
    def __init__(self, retry_number):
        self.retry_number = retry_number
        self.log = dg.get_dagster_logger()


def test_backoff_is_two_four_eight_seconds():
    assert [backoff_seconds(n) for n in range(MAX_RETRIES)] == [2, 4, 8]


@pytest.mark.parametrize("error", [
    psycopg.OperationalError("connection refused"),
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
])
def test_storage_faults_request_a_retry_with_the_spec_delay(error):
    for attempt in range(MAX_RETRIES):
        with pytest.raises(dg.RetryRequested) as raised:
            with retry_storage_faults(Context(attempt)):
                raise error
        assert raised.value.seconds_to_wait == backoff_seconds(attempt)
        assert raised.value.max_retries == MAX_RETRIES


def test_after_the_last_retry_the_fault_names_the_setting_in_one_line(monkeypatch):
    monkeypatch.setenv("GREENSTREAM_DATABASE_URL", "postgresql://greenstream:pa55-word@127.0.0.1:5999/greenstream")
    with pytest.raises(dg.Failure) as raised:
        with retry_storage_faults(Context(MAX_RETRIES)):
            raise psycopg.OperationalError('connection to server at "127.0.0.1", port 5999 failed: '
                                           "Connection refused\n\tIs the server running? pa55-word")
    description = raised.value.description
    assert description.startswith("storage fault after 3 retries: GREENSTREAM_DATABASE_URL: ")
    assert "127.0.0.1:5999" in description and "refused the connection" in description
    assert "\n" not in description and "pa55-word" not in description
    assert "pa55-word" not in str(raised.value.metadata["error"].value)
    trace = raised.value.metadata["traceback"].value  # the driver's traceback, once, at the last failure
    assert "OperationalError" in trace and "Is the server running?" in trace and "pa55-word" not in trace


def test_a_retry_is_one_line_with_the_attempt_the_wait_and_the_setting(monkeypatch):
    monkeypatch.setenv("GREENSTREAM_DATABASE_URL", "postgresql://greenstream:pa55-word@127.0.0.1:5999/greenstream")
    with pytest.raises(dg.RetryRequested) as raised:
        with retry_storage_faults(Context(1)):
            raise psycopg.OperationalError('connection to server at "127.0.0.1", port 5999 failed: '
                                           "Connection refused\n\tIs the server running? pa55-word")
    (line,) = [info.to_string() for info in raised.value.user_code_process_error_infos]
    assert line.startswith("attempt 2 failed, retry 2 of 3 in 4 s: GREENSTREAM_DATABASE_URL: ")
    assert "refused the connection" in line and "\n" not in line and "pa55-word" not in line
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_an_exhausted_s3_fault_names_the_endpoint_setting(monkeypatch):
    monkeypatch.setenv("GREENSTREAM_S3_ENDPOINT_URL", "http://127.0.0.1:5998")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with pytest.raises(dg.Failure) as raised:
        with retry_storage_faults(Context(MAX_RETRIES)):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:5998/b/k")
    assert raised.value.description == (
        "storage fault after 3 retries: GREENSTREAM_S3_ENDPOINT_URL: no S3 server answers at "
        "http://127.0.0.1:5998 (EndpointConnectionError)")


def test_a_bug_in_the_rules_is_not_retried():
    with pytest.raises(ZeroDivisionError):
        with retry_storage_faults(Context(0)):
            _ = 1 / 0
