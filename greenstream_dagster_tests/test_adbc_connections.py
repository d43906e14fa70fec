"""ADBC connections are kept for the run process's next bulk statement
(storage/operational/adbc_connections.py), without carrying one user's session into
another's, and survive the server dropping them."""

from __future__ import annotations

import psycopg
import pytest

from greenstream_dagster.storage.operational.adbc_connections import adbc_connection, close_idle, idle_count


@pytest.fixture(autouse=True)
def none_kept():
    close_idle()
    yield
    close_idle()


def _backend(database_url: str, autocommit: bool = False) -> int:
    with adbc_connection(database_url, autocommit=autocommit) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


@pytest.mark.parametrize("autocommit", [False, True])
def test_a_connection_is_used_again(database_url, autocommit):
    first = _backend(database_url, autocommit)
    assert all(_backend(database_url, autocommit) == first for _ in range(3))  # adbc.connect: a new backend each
    assert idle_count(database_url) == 1


def test_the_next_user_sees_neither_temporary_tables_nor_uncommitted_work(database_url):
    with adbc_connection(database_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE scratch (n int)")
        cur.execute("CREATE TABLE left_uncommitted (n int)")
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    with adbc_connection(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid(), to_regclass('pg_temp.scratch') IS NULL, "
                    "to_regclass('public.left_uncommitted') IS NULL")
        assert cur.fetchone() == (pid, True, True)
        cur.execute("CREATE TEMP TABLE scratch (n int)")  # the name is free again
        conn.commit()


def test_a_connection_whose_use_failed_is_not_kept(database_url):
    pid = _backend(database_url)
    with pytest.raises(RuntimeError):
        with adbc_connection(database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            raise RuntimeError("the user's own error")
    assert idle_count(database_url) == 0
    assert _backend(database_url) != pid


def test_a_session_the_server_ended_is_replaced_without_an_error(database_url):
    pid = _backend(database_url)
    with psycopg.connect(database_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    replaced = _backend(database_url)  # without the check before reuse: a lost-connection error
    assert replaced != pid
