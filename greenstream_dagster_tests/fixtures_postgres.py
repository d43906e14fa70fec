"""PostgreSQL fixtures: one real embedded server per test session, a fresh database per test.

Set GREENSTREAM_TEST_DATABASE_URL to run against another server instead (its
user must be allowed to CREATE DATABASE); the embedded one is the default.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.storage.operational.migrate import apply_migrations


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextmanager
def server_folder() -> Iterator[Path]:
    """A folder for an embedded server, outside pytest's temporary root: run as root, the server
    is another user, and every pytest session that starts resets that root to mode 0700."""
    path = Path(tempfile.mkdtemp(prefix="greenstream-test-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def postgres_folder() -> Iterator[Path]:
    with server_folder() as path:
        yield path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of the session's PostgreSQL server (its `greenstream` database)."""
    external = os.environ.get("GREENSTREAM_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with server_folder() as folder:
        server = EmbeddedPostgres(folder / "postgres")
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture
def empty_database_url(postgres_server) -> Iterator[str]:
    """A database of its own for one test, without the project's tables."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(empty_database_url) -> str:
    """A database of its own for one test, migrated to the current schema."""
    apply_migrations(empty_database_url)
    return empty_database_url
