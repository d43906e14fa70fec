"""A storage attempt waits out a short PostgreSQL outage, boundedly, and only an outage, when the
process has not met the server yet or lost it since (storage/operational/server_wait.py)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from greenstream_dagster.storage.operational import server_wait
from greenstream_dagster.storage.operational.server_wait import wait_for_server, wait_unless_reached
from greenstream_dagster.storage.operational.store import OperationalStore


def test_a_reachable_server_is_used_at_once(postgres_server):
    assert wait_for_server(postgres_server, 5) < 1


def test_no_server_is_waited_for_up_to_the_bound_then_the_error_is_raised():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the probe is closed
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        wait_for_server(f"postgresql://nobody:secret@127.0.0.1:{port}/greenstream", 2.0)
    assert 1.0 <= time.monotonic() - started < 5


def test_a_server_that_refuses_the_password_fails_at_once(postgres_server):
    parts = urlsplit(postgres_server)
    wrong = urlunsplit(parts._replace(netloc=f"{parts.username}:wrong-password@{parts.hostname}:{parts.port}"))
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="password"):
        wait_for_server(wrong, 10)
    assert time.monotonic() - started < 3


def test_a_process_waits_for_the_server_once_until_a_connection_finds_it_gone(empty_database_url, monkeypatch):
    """A run asks for the store about ten times: only the first ask waits for the server, and the
    first after a connection of the store lost it (so a retry of an outage waits again)."""
    probes = []
    monkeypatch.setattr(server_wait, "wait_for_server", lambda url, seconds: probes.append(url) or 0.0)
    store = OperationalStore(empty_database_url)
    wait_unless_reached(store.url)
    wait_unless_reached(store.url)
    assert probes == [store.url]

    with pytest.raises(psycopg.errors.UndefinedTable), store.connect() as conn:
        conn.execute("SELECT * FROM no_such_table")  # the statement's own error: the server is there
    wait_unless_reached(store.url)
    assert probes == [store.url]

    with pytest.raises(psycopg.OperationalError), store.connect() as conn:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the session lost, as in a restart
    wait_unless_reached(store.url)
    assert probes == [store.url, store.url]
