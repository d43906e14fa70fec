"""Dagster's run, event-log and schedule storage in PostgreSQL, keeping a connection open.

dagster-postgres connects anew for every statement (SQLAlchemy's NullPool, so that
no process holds connections it does not use). On a loopback server with password
authentication a connection costs about 9 ms against 0.4 ms for a statement on an
open one, and a run of a day stores some 150 events: more than a second of every
run went into connecting. These storages are dagster-postgres's own with one
change: each process keeps one connection per storage open (more are opened while
threads need them at once, and closed after use, as before). Each connection is
checked with a ping before use, so a server restart (an outage, a failover) costs
a reconnect, not an error.

`dagster.yaml` names these classes for `run_storage`, `event_log_storage` and
`schedule_storage`, with the same `postgres_url` setting as dagster-postgres's.
"""

from __future__ import annotations

from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

KEPT_CONNECTION = {
    "isolation_level": "AUTOCOMMIT",  # as dagster-postgres's engines
    "pool_size": 1,
    "max_overflow": -1,  # concurrent statements never wait for the kept connection
    "pool_pre_ping": True,
    "pool_recycle": 3600,
}


class _KeepsAConnection:
    """Mixed into a dagster-postgres storage: its engine keeps one connection open."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        connecting_anew = self._engine
        self._engine = create_pg_engine(self.postgres_url, self._token_provider, **KEPT_CONNECTION)
        connecting_anew.dispose()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


class PooledPostgresRunStorage(_KeepsAConnection, PostgresRunStorage):
    pass


class PooledPostgresEventLogStorage(_KeepsAConnection, PostgresEventLogStorage):
    pass


class PooledPostgresScheduleStorage(_KeepsAConnection, PostgresScheduleStorage):
    pass
