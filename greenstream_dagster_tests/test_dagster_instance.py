"""Dagster's storage lives on a PostgreSQL server apart from the operational store
(services/dagster_instance.py): an outage of one leaves the other running."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

from greenstream_dagster.services.dagster_instance import PROJECT_ROOT, dagster_environment
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import load_settings
from greenstream_dagster_tests.fixtures_postgres import server_folder


def test_unset_storage_url_starts_a_server_of_its_own_that_stops_with_the_services(s3_env, postgres_server):
    with server_folder() as folder:
        env = {**s3_env, "GREENSTREAM_DATABASE_URL": postgres_server, "GREENSTREAM_DATA_DIR": str(folder)}
        settings = load_settings(env)
        with resolve_services(settings) as services:
            exported = dagster_environment(services, settings, env)
            storage = urlsplit(exported["DAGSTER_POSTGRES_URL"])
            assert storage.scheme == "postgresql+psycopg2" and storage.path == "/dagster"
            assert storage.port != urlsplit(postgres_server).port
            plain = exported["DAGSTER_POSTGRES_URL"].replace("postgresql+psycopg2://", "postgresql://", 1)
            with psycopg.connect(plain, connect_timeout=5) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == ("dagster",)
            assert (folder / "dagster_postgres" / "pgdata").is_dir()
            home = exported["DAGSTER_HOME"]
            assert (PROJECT_ROOT / "dagster.yaml").read_text() == (folder / "dagster_home" / "dagster.yaml").read_text()
            assert home == str(folder / "dagster_home")
        try:
            psycopg.connect(plain, connect_timeout=2).close()
            still_running = True
        except psycopg.OperationalError:
            still_running = False
        assert not still_running, "the Dagster storage server outlived the services"


def test_a_configured_storage_url_is_used_as_is(s3_env, postgres_server):
    with server_folder() as folder:
        configured = "postgresql+psycopg2://dagster:secret@dagster-db.example:5432/dagster"
        env = {**s3_env, "GREENSTREAM_DATABASE_URL": postgres_server, "GREENSTREAM_DATA_DIR": str(folder),
               "DAGSTER_POSTGRES_URL": configured}
        settings = load_settings(env)
        with resolve_services(settings) as services:
            assert dagster_environment(services, settings, env)["DAGSTER_POSTGRES_URL"] == configured
        assert not (folder / "dagster_postgres").exists()
