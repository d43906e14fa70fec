"""Resolve the S3 and PostgreSQL the platform runs against (SPEC §7, §8).

One code path for every environment: a configured endpoint or database URL is
used as is; an unset one is replaced by the embedded server under the
settings' data folder (`<data_dir>/s3`, `<data_dir>/postgres`). Either way the
service is checked before anything runs, so bad configuration fails at start
with a ConfigurationError that names the setting — never with a stack trace
from the first asset, and never echoing a secret.

The embedded servers started here stop with `close()` (or the `with` block).
A server another process already started on the same data folder is reused
and left running, so `greenstream services` in one terminal serves every
later process that resolves the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

import botocore.exceptions
import psycopg

from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.embedded_postgres import EmbeddedPostgres
from greenstream_dagster.services.embedded_s3 import EmbeddedS3
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
    ensure_bucket(endpoint, key_id, secret, settings.aws_region, settings.bucket)
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
        url = server.start()
    except Exception as error:  # the embedded servers' own errors name their log
        raise ConfigurationError(setting, f"unset, so the embedded {what} was started and failed: {error}") from error
    servers.append(server)
    return url


def ensure_bucket(
    endpoint_url: str | None, key_id: str | None, secret: str | None, region: str, bucket: str
) -> None:
    """Check the endpoint answers and the credentials are accepted; create the bucket if missing."""
    client = make_s3_client(
        endpoint_url, key_id, secret, region,
        connect_timeout=S3_PROBE_TIMEOUT_SECONDS, read_timeout=S3_PROBE_TIMEOUT_SECONDS, max_attempts=2,
    )
    where = _safe_url(endpoint_url) if endpoint_url else "AWS"
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
        return
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in ("NoSuchBucket", "404"):
            raise _s3_refusal(code, where, bucket) from None
    except botocore.exceptions.NoCredentialsError:
        raise ConfigurationError(
            "AWS_ACCESS_KEY_ID", f"no S3 credentials found for {where}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError) as error:
        raise ConfigurationError(_S3_URL, f"no S3 server answers at {where} ({type(error).__name__})") from None
    try:
        if region == "us-east-1":
            client.create_bucket(Bucket=bucket)
        else:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code != "BucketAlreadyOwnedByYou":  # another process created it meanwhile
            raise ConfigurationError(
                "GREENSTREAM_BUCKET", f"bucket {bucket!r} is missing on {where} and could not be created ({code})"
            ) from None


def _s3_refusal(code: str, where: str, bucket: str) -> ConfigurationError:
    if code == "SignatureDoesNotMatch":
        return ConfigurationError(
            "AWS_SECRET_ACCESS_KEY", f"{where} rejected the request signature: the secret does not match AWS_ACCESS_KEY_ID"
        )
    if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
        return ConfigurationError("AWS_ACCESS_KEY_ID", f"{where} does not know this access key")
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return ConfigurationError("AWS_ACCESS_KEY_ID", f"these credentials may not list bucket {bucket!r} on {where}")
    return ConfigurationError(_S3_URL, f"{where} refused to list bucket {bucket!r} ({code or 'unknown error'})")


def check_database(database_url: str) -> None:
    """A short connect: an unreachable or refusing database fails here, naming the setting."""
    try:
        with psycopg.connect(database_url, connect_timeout=DATABASE_CONNECT_TIMEOUT_SECONDS) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        password = urlparse(database_url).password
        if password:  # a malformed URL can be echoed back in libpq's message
            reason = reason.replace(password, "***")
        raise ConfigurationError(
            _DATABASE_URL, f"cannot connect to PostgreSQL at {_safe_url(database_url)}: {reason}"
        ) from None


def _safe_url(url: str) -> str:
    """scheme://host:port/path with any user and password left out."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def start_embedded(services: ResolvedServices, server, setting: str, what: str) -> str:
    """Start (or reuse) one more embedded server beside `services`; it stops with them.
    A failure is a ConfigurationError naming `setting`, the variable that would replace it."""
    return _start(server, services._servers, setting, what)
