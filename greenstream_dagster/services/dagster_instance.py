"""The Dagster instance beside the services: DAGSTER_HOME with the project's dagster.yaml,
and DAGSTER_POSTGRES_URL for its run, event and schedule storage (SPEC §6).

`greenstream dev` and `greenstream services` both export these, so that `dagster …`
commands run in another shell use the same instance as the UI.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

from greenstream_dagster.services.runtime import ResolvedServices
from greenstream_dagster.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGSTER_DATABASE = "dagster"


def dagster_storage_url(database_url: str) -> str:
    """Dagster's own storage: the same server, database `dagster`.

    The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3,
    whose server-side parameters break dagster-postgres's `NOTIFY run_events, %s`.
    """
    parsed = urlparse(database_url)
    return urlunparse(parsed._replace(scheme="postgresql+psycopg2", path=f"/{DAGSTER_DATABASE}"))


def ensure_database(database_url: str, name: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def dagster_environment(services: ResolvedServices, settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """DAGSTER_HOME and DAGSTER_POSTGRES_URL: kept from `env` when set, else made for these services."""
    storage = env.get("DAGSTER_POSTGRES_URL")
    if not storage:
        storage = dagster_storage_url(services.database_url)
        if "database" in services.embedded:
            ensure_database(services.database_url, DAGSTER_DATABASE)
    home = Path(env.get("DAGSTER_HOME") or settings.data_dir / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() or not env.get("DAGSTER_HOME"):
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {"DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": storage}
