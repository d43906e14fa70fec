"""Dagster's storages keep a connection open per process (instance/storage.py) and
survive the server dropping it."""

from __future__ import annotations

import psycopg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData

from greenstream_dagster.services.dagster_instance import PROJECT_ROOT

STORAGES = ("run_storage", "event_log_storage", "schedule_storage")


def _storage(section: str, database_url: str, monkeypatch):
    """The storage as our dagster.yaml configures it, on the test database."""
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    config, _ = dagster_instance_config(str(PROJECT_ROOT), "dagster.yaml")
    entry = config[section]
    return ConfigurableClassData(entry["module"], entry["class"], yaml.safe_dump(entry["config"])).rehydrate()


def _backend(storage):
    connect = storage.index_connection if hasattr(storage, "index_connection") else storage.connect
    with connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()


@pytest.mark.parametrize("section", STORAGES)
def test_statements_reuse_one_connection(section, database_url, monkeypatch):
    storage = _storage(section, database_url, monkeypatch)
    try:
        first = _backend(storage)
        assert all(_backend(storage) == first for _ in range(5))  # dagster-postgres alone: a new backend each
    finally:
        storage.dispose()


def test_a_dropped_connection_is_replaced_without_an_error(database_url, monkeypatch):
    storage = _storage("event_log_storage", database_url, monkeypatch)
    try:
        dropped = _backend(storage)
        with psycopg.connect(database_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (dropped,)).fetchone() == (True,)
        assert _backend(storage) != dropped
    finally:
        storage.dispose()
