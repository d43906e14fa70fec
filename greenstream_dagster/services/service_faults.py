"""Which setting a fault of S3 or PostgreSQL points at, in one line (SPEC §7: errors name the setting).

Used twice: by the start checks (a refused connection there is a configuration
error) and by a storage step whose retries are exhausted (then it is most
likely the same setting, or an outage; the line says where it looked). The
lines name the host and port, never a user's password or secret, and the
services' own words are kept short and escaped, since a server's message can
hold anything.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

import botocore.exceptions
import psycopg

from greenstream_dagster.settings import ConfigurationError

S3_SETTING = "GREENSTREAM_S3_ENDPOINT_URL"
DATABASE_SETTING = "GREENSTREAM_DATABASE_URL"
REASON_LIMIT = 200

_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def safe_url(url: str) -> str:
    """scheme://host:port/path with any user and password left out."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        port = ""
    return one_line(f"{parsed.scheme}://{host}{port}{parsed.path}")


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    """Whitespace runs folded, control characters escaped, cut at `limit` with a visible marker."""
    folded = " ".join(str(text).split())
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in folded)
    return escaped if len(escaped) <= limit else escaped[:limit] + "…[cut]"


def s3_where(endpoint_url: str | None) -> str:
    return safe_url(endpoint_url) if endpoint_url else "AWS S3"


def s3_fault(error: Exception, endpoint_url: str | None, bucket: str, where: str | None = None) -> ConfigurationError:
    """The setting an S3 client error points at."""
    where = where or s3_where(endpoint_url)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return ConfigurationError(
            "AWS_ACCESS_KEY_ID", f"no S3 credentials found for {where}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, _UNREACHABLE):
        return ConfigurationError(S3_SETTING, f"no S3 server answers at {where} ({type(error).__name__})")
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "SignatureDoesNotMatch":
            return ConfigurationError(
                "AWS_SECRET_ACCESS_KEY", f"{where} rejected the request signature: the secret does not match AWS_ACCESS_KEY_ID"
            )
        if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
            return ConfigurationError("AWS_ACCESS_KEY_ID", f"{where} does not know this access key")
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return ConfigurationError("AWS_ACCESS_KEY_ID", f"these credentials may not use bucket {bucket!r} on {where}")
        if code in ("NoSuchBucket", "404"):
            return ConfigurationError("GREENSTREAM_BUCKET", f"bucket {bucket!r} does not exist on {where}")
        return ConfigurationError(S3_SETTING, f"{where} refused a request on bucket {bucket!r} ({one_line(code) or 'unknown error'})")
    return ConfigurationError(S3_SETTING, f"S3 at {where} failed: {fault_reason(error, None)}")


def database_fault(error: Exception, database_url: str) -> ConfigurationError:
    """The setting a PostgreSQL connection error points at (always the URL: host, user, password, database)."""
    parsed = urlparse(database_url)
    where = f"{parsed.hostname}:{_port(parsed)}"
    reason = fault_reason(error, database_url)
    lowered = reason.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered or "pg_hba.conf" in lowered:
        problem = f"PostgreSQL at {where} refused user {parsed.username or '(none)'!r}: wrong password, or the user may not connect"
    elif "does not exist" in lowered and "database" in lowered:
        problem = f"PostgreSQL at {where} has no database {parsed.path.lstrip('/') or '(default)'!r}"
    elif "connection refused" in lowered:
        problem = f"PostgreSQL at {where} refused the connection (nothing listens there)"
    elif "timeout expired" in lowered or "timed out" in lowered:
        problem = f"PostgreSQL at {where} did not answer in time"
    elif "could not translate host name" in lowered or "name or service not known" in lowered:
        problem = f"unknown host {parsed.hostname!r}"
    else:
        problem = f"PostgreSQL at {where} failed: {reason}"
    return ConfigurationError(DATABASE_SETTING, problem)


def _port(parsed) -> int | str:
    try:
        return parsed.port or 5432
    except ValueError:
        return "?"


def fault_reason(error: Exception, database_url: str | None, limit: int = REASON_LIMIT) -> str:
    """The service's own words: one line, escaped, bounded, the URL's password masked."""
    reason = str(error) or type(error).__name__
    if database_url:
        password = urlparse(database_url).password
        for secret in {password, unquote(password or "")} - {None, ""}:
            reason = reason.replace(secret, "***")  # a malformed URL can be echoed back by libpq
    return one_line(reason, limit)


def storage_fault(error: Exception, *, endpoint_url: str | None, bucket: str, database_url: str | None) -> str:
    """One line for a storage fault that outlived its retries: the setting it most likely points at."""
    if isinstance(error, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
        where = None
        if endpoint_url is None:  # the embedded server: its address is only in the error, if anywhere
            seen = getattr(error, "kwargs", {}).get("endpoint_url")
            parsed = urlparse(seen or "")
            where = f"the embedded S3 at {parsed.hostname}:{parsed.port}" if parsed.hostname else "the embedded S3"
        named = s3_fault(error, endpoint_url, bucket, where)
        origin = "" if endpoint_url else " (unset)"
    elif isinstance(error, psycopg.Error) or type(error).__module__.startswith("adbc_driver"):
        origin = ""
        if database_url is None:  # the embedded server: where it was is in the failed connection, if anywhere
            origin = " (unset)"
            pgconn = getattr(error, "pgconn", None)
            host, port = (getattr(pgconn, "host", b"") or b"", getattr(pgconn, "port", b"") or b"")
            if not host:
                return f"{DATABASE_SETTING}{origin}: the embedded PostgreSQL failed: {fault_reason(error, None)}"
            database_url = f"postgresql://{host.decode(errors='replace')}:{port.decode(errors='replace') or 5432}/"
        named = database_fault(error, database_url)
    else:
        return f"{S3_SETTING} or {DATABASE_SETTING}: a service failed: {type(error).__name__}: {fault_reason(error, database_url)}"
    setting, problem = str(named).split(": ", 1)
    return f"{setting}{origin}: {problem}"
