"""The Dagster instance beside the services: DAGSTER_HOME with the project's dagster.yaml,
and DAGSTER_POSTGRES_URL for its run, event and schedule storage (SPEC §6).

`greenstream dev` and `greenstream services` both export these, so that `dagster …`
commands run in another shell use the same instance as the UI.

Dagster's storage lives on a PostgreSQL server of its own, never on the
operational store's server. A step's retry is itself an event-log write: with
both on one server, an outage of the operational store also took the
bookkeeping down, and the step failed without a single retry. Apart, an outage
of the operational store is a storage fault that the step's retries (and, past
them, the dead letters) handle, while Dagster keeps recording. Unless
DAGSTER_POSTGRES_URL is set, a second embedded PostgreSQL under
`<data_dir>/dagster_postgres` holds it; in compose it is the `dagster_postgresql`
service; in production a separate database instance (for example its own RDS
instance), not a second database on the operational one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.services.runtime import ResolvedServices, start_embedded
from greenstream_dagster.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGSTER_DATABASE = "dagster"
DAGSTER_SERVER_FOLDER = "dagster_postgres"


def dagster_storage_url(database_url: str) -> str:
    """Dagster's own storage: database `dagster` on the server of `database_url`.

    The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3,
    whose server-side parameters break dagster-postgres's `NOTIFY run_events, %s`.
    """
    parsed = urlparse(database_url)
    return urlunparse(parsed._replace(scheme="postgresql+psycopg2", path=f"/{DAGSTER_DATABASE}"))


def ensure_database(database_url: str, name: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def dagster_storage(services: ResolvedServices, settings: Settings, env: dict[str, str]) -> str:
    """DAGSTER_POSTGRES_URL from `env`, else the embedded Dagster storage server (started or
    reused under `<data_dir>/dagster_postgres`, stopped with `services`)."""
    storage = env.get("DAGSTER_POSTGRES_URL")
    if storage:
        return storage
    server_url = start_embedded(services, EmbeddedPostgres(settings.data_dir / DAGSTER_SERVER_FOLDER),
                                "DAGSTER_POSTGRES_URL", "PostgreSQL for Dagster's storage")
    ensure_database(server_url, DAGSTER_DATABASE)
    return dagster_storage_url(server_url)


def needs_storage_url(env) -> bool:
    """Whether the instance of DAGSTER_HOME reads DAGSTER_POSTGRES_URL and `env` lacks it."""
    home = env.get("DAGSTER_HOME")
    if not home or env.get("DAGSTER_POSTGRES_URL"):
        return False
    instance_file = Path(home) / "dagster.yaml"
    return instance_file.exists() and "DAGSTER_POSTGRES_URL" in instance_file.read_text()


def dagster_environment(services: ResolvedServices, settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """DAGSTER_HOME and DAGSTER_POSTGRES_URL: kept from `env` when set, else made for these services."""
    storage = dagster_storage(services, settings, env)
    home = Path(env.get("DAGSTER_HOME") or settings.data_dir / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() or not env.get("DAGSTER_HOME"):
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {"DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": storage}
