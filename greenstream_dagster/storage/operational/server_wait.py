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

A process waits only when it has reason to: the first time it meets the server,
and again after one of its connections found the server gone (`server_lost`,
told by the store's connections, store.py). A run asks for the store about ten
times, and a probe on each ask cost a connection each time the server was up.
So the attempt that meets an outage fails at once, as a storage fault the step
retries (nothing told it the server was gone), and every retry after it waits:
the 44 s above, counted from that failure.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg

SERVER_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.5
_CONNECT_TIMEOUT_SECONDS = 2
# libpq reports a server's refusal at connection time as text only (no SQLSTATE): "FATAL: …".
# These refusals mean "not yet": starting up, shutting down, recovering (SQLSTATE 57P03).
_NOT_READY = ("starting up", "shutting down", "in recovery", "not yet accepting connections")

_reached: set[tuple[int, str]] = set()  # (process, URL): the server answered, and was not lost since
_lock = threading.Lock()


def wait_unless_reached(database_url: str, max_wait_seconds: float = SERVER_WAIT_SECONDS) -> float:
    """`wait_for_server`, unless this process reached the server before and lost none of its
    connections since (then 0 at once). Per process: a forked child meets the server itself."""
    key = (os.getpid(), database_url)
    with _lock:
        if key in _reached:
            return 0.0
    waited = wait_for_server(database_url, max_wait_seconds)
    with _lock:
        _reached.add(key)
    return waited


def server_lost(database_url: str) -> None:
    """A connection to the server failed: the next `wait_unless_reached` waits for it again."""
    with _lock:
        _reached.discard((os.getpid(), database_url))


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
