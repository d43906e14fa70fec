"""Waiting out a short PostgreSQL outage at the start of a storage attempt (SPEC §6).

A step that touches the operational store retries 3 times after 2 s, 4 s and
8 s: 14 s of waits. A server restart, a fail-over or a maintenance reboot
takes longer than that (a 25 s outage is common), so every attempt first
waits for the server to accept connections again, for a bounded time
(`SERVER_WAIT_SECONDS`), before it fails. The attempts then span about
2 + 4 + 8 + 3 × 10 = 44 s after the first failure (plus each attempt's own
start-up), comfortably more than 25 s; an outage longer than that still fails
the step after its last retry and the partition goes to the dead letters.

Only the absence of a server is waited out: connection refused, a timeout, a
server starting up or shutting down. A server that answers with a refusal
(wrong password, missing database) fails at once — waiting cannot fix it.
"""

from __future__ import annotations

import time

import psycopg

SERVER_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.5
_CONNECT_TIMEOUT_SECONDS = 2
# libpq reports a server's refusal at connection time as text only (no SQLSTATE): "FATAL: …".
# These refusals mean "not yet": starting up, shutting down, recovering (SQLSTATE 57P03).
_NOT_READY = ("starting up", "shutting down", "in recovery", "not yet accepting connections")


def wait_for_server(database_url: str, max_wait_seconds: float = SERVER_WAIT_SECONDS) -> float:
    """Return once the server accepts a connection (the seconds waited); raise the last
    psycopg.OperationalError when it still does not after `max_wait_seconds`."""
    started = time.monotonic()
    deadline = started + max_wait_seconds
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=_CONNECT_TIMEOUT_SECONDS):
                return round(time.monotonic() - started, 3)
        except psycopg.OperationalError as error:
            if _refused(error) or time.monotonic() + _POLL_SECONDS > deadline:
                raise
        time.sleep(_POLL_SECONDS)


def _refused(error: psycopg.OperationalError) -> bool:
    """A server answered and said no, for a reason waiting does not change."""
    message = str(error)
    return "FATAL" in message and not any(reason in message for reason in _NOT_READY)
