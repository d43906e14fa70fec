"""The embedded PostgreSQL (SPEC §7): loopback only, a free port, data kept under data_dir."""

from __future__ import annotations

import socket

import psycopg
import pytest

from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError

pytestmark = pytest.mark.services


def test_start_serves_the_greenstream_database_on_loopback(postgres_folder):
    server = EmbeddedPostgres(postgres_folder / "pg")
    try:
        url = server.start()
        assert url.startswith("postgresql://greenstream:") and f"@127.0.0.1:{server.port}/greenstream" in url
        with psycopg.connect(url) as conn:
            database, address = conn.execute("SELECT current_database(), inet_server_addr()::text").fetchone()
            listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert (database, address, listen) == ("greenstream", "127.0.0.1/32", "127.0.0.1")
        assert (postgres_folder / "pg" / "pgdata" / "PG_VERSION").exists()
    finally:
        server.stop()


def test_a_password_is_required_and_never_shown(postgres_folder):
    server = EmbeddedPostgres(postgres_folder / "pg")
    try:
        url = server.start()
        password = url.split(":")[2].split("@")[0]
        assert password not in repr(server)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.replace(password, "wrong"), connect_timeout=5)
    finally:
        server.stop()


def test_a_second_start_on_the_same_folder_keeps_the_data(postgres_folder):
    server = EmbeddedPostgres(postgres_folder / "pg")
    with server as url:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    with EmbeddedPostgres(postgres_folder / "pg") as url_again:
        with psycopg.connect(url_again) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)


def test_stop_ends_the_server(postgres_folder):
    server = EmbeddedPostgres(postgres_folder / "pg")
    url = server.start()
    server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    assert not (postgres_folder / "pg" / "pgdata" / "postmaster.pid").exists()


def test_a_server_already_running_on_the_folder_is_reused_and_left_running(postgres_folder):
    owner = EmbeddedPostgres(postgres_folder / "pg")
    try:
        url = owner.start()
        guest = EmbeddedPostgres(postgres_folder / "pg")
        assert guest.start() == url
        guest.stop()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        owner.stop()


def test_a_start_that_fails_names_the_server_log(postgres_folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedPostgres(postgres_folder / "pg", port=port)
        with pytest.raises(EmbeddedPostgresError) as failure:
            server.start()
    assert str(postgres_folder / "pg" / "postgres.log") in str(failure.value)
    assert f"127.0.0.1:{port}" in str(failure.value)
