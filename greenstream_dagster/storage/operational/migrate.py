"""Versioned SQL migrations the project applies itself.

Files `migrations/NNNN_name.sql` run once each, in version order, each in its
own transaction, recorded in `schema_migrations` with a checksum. A session
advisory lock serialises concurrent starters (webserver, daemon, code server):
the second waits, then finds nothing left to apply. An applied file that has
since been edited is an error, never silently skipped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from greenstream_dagster.storage.operational.store import OperationalStore

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK = "greenstream.schema_migrations"


class MigrationError(RuntimeError):
    """A migration file is missing, malformed or was changed after being applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_lowercase_name.sql")
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two migration files share a version number")
    return migrations


def apply_migrations(database_url: str, folder: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply the pending migrations; return their versions (empty when up to date)."""
    migrations = discover_migrations(folder)
    applied_now: list[int] = []
    with OperationalStore(database_url).connect(autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_LOCK,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer     PRIMARY KEY,
                       name       text        NOT NULL,
                       checksum   text        NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = {
                version: (name, checksum)
                for version, name, checksum in conn.execute(
                    "SELECT version, name, checksum FROM schema_migrations"
                )
            }
            for migration in migrations:
                if migration.version in applied:
                    name, checksum = applied[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.name} was changed after it was applied "
                            f"(as {name}); add a new migration instead of editing it"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK,))
    return applied_now
