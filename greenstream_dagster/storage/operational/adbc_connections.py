"""ADBC connections kept idle for the run process's next bulk statement.

Opening an ADBC connection to PostgreSQL costs 55–65 ms (the driver reads the
server's type catalog on every connect), and one run opens seven or more: the
load's COPY slices, the registry's, the silent meters'. That is half a second
per run, and a day filling under continuous arrival pays it on every run. The
steps of a run share one process (in-process executor), so a connection is kept
once its user is done with it and handed to the next one:

- only after its work was ended: uncommitted work rolled back (what closing it
  would have done) and its temporary tables dropped, so a user never sees
  another's session state;
- checked with one round trip before it is handed out (a server restarted
  since would otherwise fail the next step), and replaced when that fails;
- never after an error in its use: that one is closed;
- per process (a forked child opens its own) and at most a few per database.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import adbc_driver_postgresql.dbapi as adbc

MAX_IDLE = 4  # per database and mode: the load's parallel COPY slices use up to four

_idle: dict[tuple[int, str, bool], list[adbc.Connection]] = {}
_lock = threading.Lock()


@contextmanager
def adbc_connection(database_url: str, *, autocommit: bool = False) -> Iterator[adbc.Connection]:
    """An open ADBC connection, as `adbc.connect(database_url, autocommit=…)` gives one; what
    its user leaves uncommitted is rolled back, as closing it would."""
    key = (os.getpid(), database_url, autocommit)
    conn = _take_idle(key) or adbc.connect(database_url, autocommit=autocommit)
    try:
        yield conn
    except BaseException:
        _close(conn)
        raise
    if _ended(conn, autocommit):
        with _lock:
            idle = _idle.setdefault(key, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return
    _close(conn)


def close_idle() -> None:
    """Close every kept connection (at exit; tests call it to start from none)."""
    with _lock:
        kept = [conn for idle in _idle.values() for conn in idle]
        _idle.clear()
    for conn in kept:
        _close(conn)


def idle_count(database_url: str) -> int:
    with _lock:
        return sum(len(idle) for (pid, url, _), idle in _idle.items() if pid == os.getpid() and url == database_url)


def _take_idle(key) -> adbc.Connection | None:
    while True:
        with _lock:
            idle = _idle.get(key)
            if not idle:
                return None
            conn = idle.pop()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
            if not key[2]:
                conn.rollback()  # the check's own transaction
            return conn
        except Exception:  # a server restarted or a session ended since: open a new one
            _close(conn)


def _ended(conn: adbc.Connection, autocommit: bool) -> bool:
    """End the user's session state; False when the connection cannot be reused."""
    try:
        if not autocommit:
            conn.rollback()
        with conn.cursor() as cur:
            cur.execute("DISCARD TEMP")
        if not autocommit:
            conn.commit()
        return True
    except Exception:
        return False


def _close(conn: adbc.Connection) -> None:
    try:
        conn.close()
    except Exception:  # closing a connection whose server is gone: nothing left to release
        pass


atexit.register(close_idle)
