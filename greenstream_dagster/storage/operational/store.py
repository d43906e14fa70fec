"""The operational store as one handle: its URL, and every connection to it opened here.

One place for how the platform connects to PostgreSQL (psycopg for statements,
ADBC for Arrow in bulk, through the idle connections of adbc_connections.py),
and for noticing that the server went away: a connection that fails for want
of the server tells server_wait.py, so the next storage attempt in this process
waits for the server again instead of failing at once (SPEC §6).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import psycopg

from greenstream_dagster.storage.operational.adbc_connections import adbc_connection
from greenstream_dagster.storage.operational.server_wait import server_lost

# What a lost or unreachable server raises (anything else is the statement's own error).
_SERVER_FAULTS = (psycopg.OperationalError, psycopg.InterfaceError,
                  adbc_driver_manager.OperationalError, adbc_driver_manager.InternalError)


@dataclass(frozen=True)
class OperationalStore:
    """The PostgreSQL operational store at `url` (SPEC §5): what the storage functions take."""

    url: str

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A psycopg connection, closed on the way out (committed, or rolled back on an error,
        as psycopg's own context manager does)."""
        with self._watched(), psycopg.connect(self.url, autocommit=autocommit) as conn:
            yield conn

    @contextmanager
    def adbc(self, *, autocommit: bool = False) -> Iterator[adbc.Connection]:
        """An ADBC connection for Arrow in bulk, taken from (and given back to) the idle ones."""
        with self._watched(), adbc_connection(self.url, autocommit=autocommit) as conn:
            yield conn

    @contextmanager
    def _watched(self) -> Iterator[None]:
        try:
            yield
        except _SERVER_FAULTS:
            server_lost(self.url)
            raise
