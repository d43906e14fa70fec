"""Resolve the S3 and PostgreSQL the platform runs against (SPEC §7, §8).

One code path for every environment: a configured endpoint or database URL is
used as is; an unset one is replaced by the embedded server under the
settings' data folder (`<data_dir>/s3`, `<data_dir>/postgres`). Either way the
service is checked before anything runs — the endpoint answers, the
credentials are accepted, the bucket exists, the database accepts the URL's
user and password — so bad configuration fails at start with a
ConfigurationError that names the setting, never with a stack trace from the
first asset, and never echoing a secret. Only the embedded server's bucket is
created here.

The embedded servers started here stop with `close()` (or the `with` block).
A server another process already started on the same data folder is reused
and left running, so `greenstream services` in one terminal serves every
later process that resolves the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import botocore.exceptions
import psycopg

from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.services.embedded_s3 import EmbeddedS3
from greenstream_dagster.services.service_faults import database_fault, one_line, s3_fault, s3_where
from greenstream_dagster.settings import ConfigurationError, Settings
from greenstream_dagster.storage.s3 import make_s3_client

S3_PROBE_TIMEOUT_SECONDS = 5
DATABASE_CONNECT_TIMEOUT_SECONDS = 5

_S3_URL = "GREENSTREAM_S3_ENDPOINT_URL"
_DATABASE_URL = "GREENSTREAM_DATABASE_URL"


@dataclass(frozen=True)
class ResolvedServices:
    """Checked, reachable services; `environment()` exports them to other processes.

    `s3_endpoint_url` (and the credentials) or `database_url` are None when
    that service was not asked for.
    """

    s3_endpoint_url: str | None
    bucket: str
    aws_access_key_id: str | None = field(repr=False)
    aws_secret_access_key: str | None = field(repr=False)
    aws_region: str
    database_url: str | None = field(default=None, repr=False)
    embedded: tuple[str, ...] = ()  # "s3", "database": the ones not configured
    _servers: list = field(default_factory=list, repr=False, compare=False)

    def environment(self) -> dict[str, str]:
        """The SPEC §8 variables that point another process at these same services."""
        env = {}
        if self.s3_endpoint_url is not None:
            env[_S3_URL] = self.s3_endpoint_url
        env["GREENSTREAM_BUCKET"] = self.bucket
        if self.aws_access_key_id is not None:
            env["AWS_ACCESS_KEY_ID"] = self.aws_access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = self.aws_secret_access_key or ""
        env["AWS_REGION"] = self.aws_region
        if self.database_url is not None:
            env[_DATABASE_URL] = self.database_url
        return env

    def close(self) -> None:
        """Stop the embedded servers started for this resolution (last started, first stopped)."""
        while self._servers:
            self._servers.pop().stop()

    def __enter__(self) -> "ResolvedServices":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def resolve_services(settings: Settings, *, s3: bool = True, database: bool = True) -> ResolvedServices:
    """Use the configured services or start the embedded ones; check each; create the bucket.

    Ask only for what the caller needs (an upload needs no database). Raises
    ConfigurationError naming the setting when a service cannot be used.
    """
    servers: list = []
    embedded: list[str] = []
    endpoint = key_id = secret = database_url = None
    try:
        if s3:
            endpoint, key_id, secret = _resolve_s3(settings, servers, embedded)
        if database:
            database_url = _resolve_database(settings, servers, embedded)
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
    return ResolvedServices(
        s3_endpoint_url=endpoint,
        bucket=settings.bucket,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_region=settings.aws_region,
        database_url=database_url,
        embedded=tuple(embedded),
        _servers=servers,
    )


def _resolve_s3(settings: Settings, servers: list, embedded: list[str]) -> tuple[str, str | None, str | None]:
    endpoint, key_id, secret = settings.s3_endpoint_url, settings.aws_access_key_id, settings.aws_secret_access_key
    if endpoint is None:
        # The embedded server knows only its own identity; configured AWS keys are for a configured endpoint.
        endpoint = _start(EmbeddedS3(settings.data_dir / "s3"), servers, _S3_URL, "S3")
        key_id, secret = embedded_s3.ACCESS_KEY_ID, embedded_s3.SECRET_ACCESS_KEY
        embedded.append("s3")
    check_s3(endpoint, key_id, secret, settings.aws_region, settings.bucket, create_missing="s3" in embedded)
    return endpoint, key_id, secret


def _resolve_database(settings: Settings, servers: list, embedded: list[str]) -> str:
    database_url = settings.database_url
    if database_url is None:
        database_url = _start(EmbeddedPostgres(settings.data_dir / "postgres"), servers, _DATABASE_URL, "PostgreSQL")
        embedded.append("database")
    check_database(database_url)
    return database_url


def _start(server, servers: list, setting: str, what: str) -> str:
    try:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        probe = server.data_dir / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as error:  # a file in the way, a read-only disk, no permission
        raise ConfigurationError(
            "GREENSTREAM_DATA_DIR",
            f"the embedded {what} cannot keep its data in {one_line(str(server.data_dir))}: "
            f"{one_line(error.strerror or type(error).__name__)}",
        ) from None
    try:
        url = server.start()
    except Exception as error:  # the embedded servers' own errors name their log
        raise ConfigurationError(setting, f"unset, so the embedded {what} was started and failed: {error}") from error
    servers.append(server)
    return url


def check_s3(
    endpoint_url: str | None, key_id: str | None, secret: str | None, region: str, bucket: str,
    *, create_missing: bool = False, timeout: float = S3_PROBE_TIMEOUT_SECONDS,
) -> None:
    """Check the endpoint answers, the credentials are accepted and the bucket exists.

    Only the embedded server's bucket is created (`create_missing`): on a
    configured endpoint a missing bucket is a configuration error naming
    GREENSTREAM_BUCKET, as a typo there must not quietly grow a second landing zone.
    """
    client = make_s3_client(
        endpoint_url, key_id, secret, region, connect_timeout=timeout, read_timeout=timeout, max_attempts=2,
    )
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
        return
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        named = s3_fault(error, endpoint_url, bucket)
        if named.setting != "GREENSTREAM_BUCKET":
            raise named from None
        if not create_missing:
            raise ConfigurationError(
                "GREENSTREAM_BUCKET",
                f"bucket {bucket!r} does not exist on {s3_where(endpoint_url)}; create it there, or fix the name",
            ) from None
    try:
        if region == "us-east-1":
            client.create_bucket(Bucket=bucket)
        else:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code != "BucketAlreadyOwnedByYou":  # another process created it meanwhile
            raise ConfigurationError(
                "GREENSTREAM_BUCKET",
                f"bucket {bucket!r} is missing on {s3_where(endpoint_url)} and could not be created ({code})",
            ) from None


def check_database(database_url: str, timeout: float = DATABASE_CONNECT_TIMEOUT_SECONDS) -> None:
    """A short connect: an unreachable or refusing database fails here, naming the setting."""
    try:
        with psycopg.connect(database_url, connect_timeout=max(2, round(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise database_fault(error, database_url) from None


def check_configured_services(settings: Settings, timeout: float = S3_PROBE_TIMEOUT_SECONDS) -> None:
    """Check what is configured; start nothing (an unset service is embedded, started on first use).

    For the code location's load (`dagster …`): the commands use resolve_services instead.
    """
    if settings.s3_endpoint_url is not None:
        check_s3(settings.s3_endpoint_url, settings.aws_access_key_id, settings.aws_secret_access_key,
                 settings.aws_region, settings.bucket, timeout=timeout)
    if settings.database_url is not None:
        check_database(settings.database_url, timeout=timeout)


def start_embedded(services: ResolvedServices, server, setting: str, what: str) -> str:
    """Start (or reuse) one more embedded server beside `services`; it stops with them.
    A failure is a ConfigurationError naming `setting`, the variable that would replace it."""
    return _start(server, services._servers, setting, what)
