"""`greenstream services`: run the embedded S3 and PostgreSQL for other processes (SPEC §7).

Starts what is not configured, prints where everything is and the `export`
lines another shell needs (the SPEC §8 variables plus DAGSTER_HOME and
DAGSTER_POSTGRES_URL, so `dagster asset materialize …` uses the same instance), then waits until Ctrl-C or SIGTERM and stops the
servers it started. Every variable is written to `<data_dir>/services.env`
(mode 0600) for `source`; secrets (a database password, a configured AWS secret)
are never printed, only referred to that file.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
from urllib.parse import urlparse

from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.dagster_instance import dagster_environment
from greenstream_dagster.services.runtime import ResolvedServices, resolve_services
from greenstream_dagster.settings import load_settings

ENV_FILE_NAME = "services.env"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "services",
        help="run the embedded S3 and PostgreSQL until Ctrl-C",
        description=__doc__,
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    settings = load_settings()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with resolve_services(settings) as services:
            environment = {**services.environment(), **dagster_environment(services, settings, dict(os.environ))}
            env_file = write_env_file(environment, settings.data_dir / ENV_FILE_NAME)
            print(summary(services, environment, env_file), flush=True)
            if not services.embedded:
                print("Everything is configured; nothing to keep running.", flush=True)
                return 0
            print("Press Ctrl-C to stop.", flush=True)
            stop.wait()
            print("Stopping the embedded services…", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def export_lines(environment: dict[str, str], env_file: str) -> list[str]:
    """`export` lines for what this shell does not already hold; secrets only by reference."""
    lines = []
    for name, value in environment.items():
        if os.environ.get(name) == value:
            continue
        if _is_secret(name, value):
            lines.append(f"# {name}: secret, see {env_file}")
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return lines


def _is_secret(name: str, value: str) -> bool:
    if name == "AWS_SECRET_ACCESS_KEY":
        return value != embedded_s3.SECRET_ACCESS_KEY  # the embedded identity is a public constant
    if name in ("GREENSTREAM_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        return urlparse(value).password is not None
    return False


def write_env_file(environment: dict[str, str], path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def summary(services: ResolvedServices, environment: dict[str, str], env_file: str) -> str:
    def origin(name: str) -> str:
        return "embedded" if name in services.embedded else "configured"

    lines = [
        f"{'S3 (' + origin('s3') + '):':<25} {services.s3_endpoint_url}  bucket {services.bucket}",
        f"{'PostgreSQL (' + origin('database') + '):':<25} {_masked(services.database_url)}",
        "",
        "In another shell:",
        *(f"  {line}" for line in export_lines(environment, env_file)),
        f"  (or: source {env_file})",
    ]
    return "\n".join(lines)


def _masked(url: str | None) -> str:
    if not url:
        return "-"
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    return url.replace(f":{parsed.password}@", ":***@", 1)
