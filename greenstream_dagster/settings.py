"""Configuration from the environment (SPEC §7, §8), validated at start.

One code path for every environment: S3 is an endpoint URL, PostgreSQL a
connection URL. When either is unset the embedded server is used. A bad value
fails at start with a ConfigurationError that names the setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.reading_limits import ReadingLimits


class ConfigurationError(ValueError):
    """A setting has a value the platform cannot start with."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


def _text(env: dict, name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _number(env: dict, name: str, default: float, kind=float, minimum: float | None = None):
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(name, f"expected a {kind.__name__}, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {raw!r}")
    return value


def _date(env: dict, name: str, default: date) -> date:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigurationError(name, f"expected a date YYYY-MM-DD, got {raw!r}") from None


def _time(env: dict, name: str, default: time) -> time:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ConfigurationError(name, f"expected a time HH:MM, got {raw!r}") from None


def _timezone(env: dict, name: str, default: str) -> str:
    raw = _text(env, name, default)
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(name, f"unknown time zone {raw!r}") from None
    return raw


def _url(env: dict, name: str, schemes: tuple[str, ...]) -> str | None:
    raw = _text(env, name)
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.hostname:
        # Never echo the URL itself: it may hold a password.
        raise ConfigurationError(name, f"expected a URL with scheme {' or '.join(schemes)} and a host")
    try:
        parsed.port
    except ValueError:
        raise ConfigurationError(name, "the URL's port is not a number") from None
    return raw


@dataclass(frozen=True)
class Settings:
    s3_endpoint_url: str | None = None  # None: embedded SeaweedFS
    bucket: str = "greenstream"
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_region: str = "us-east-1"
    database_url: str | None = field(default=None, repr=False)  # None: embedded PostgreSQL
    data_dir: Path = Path(".greenstream")
    lookback_days: int = 7
    retention_days: int = 90
    schedule_timezone: str = "UTC"
    check_warn_share: float = 0.05
    rules: RulesConfig = RulesConfig()
    reading_limits: ReadingLimits = ReadingLimits()

    @property
    def partitions_start(self) -> date:
        return self.rules.partitions_start


def load_settings(env: dict | None = None) -> Settings:
    """Read and validate every setting; raise ConfigurationError naming the first bad one."""
    env = dict(os.environ if env is None else env)
    s3 = _url(env, "GREENSTREAM_S3_ENDPOINT_URL", ("http", "https"))
    key_id = _text(env, "AWS_ACCESS_KEY_ID")
    secret = _text(env, "AWS_SECRET_ACCESS_KEY")
    if s3 is not None and (key_id is None) != (secret is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        raise ConfigurationError(missing, "must be set together with the other AWS credential")
    bucket = _text(env, "GREENSTREAM_BUCKET", "greenstream")
    if not (3 <= len(bucket) <= 63) or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise ConfigurationError("GREENSTREAM_BUCKET", f"not a valid S3 bucket name: {bucket!r}")
    timezone = _timezone(env, "GREENSTREAM_TIMEZONE", "UTC")
    hemisphere = _text(env, "GREENSTREAM_HEMISPHERE", "north").lower()
    if hemisphere not in ("north", "south"):
        raise ConfigurationError("GREENSTREAM_HEMISPHERE", f"expected north or south, got {hemisphere!r}")
    min_kw = _number(env, "GREENSTREAM_MIN_KW", 0.0)
    max_kw = _number(env, "GREENSTREAM_MAX_KW", 100.0)
    if min_kw > max_kw:
        raise ConfigurationError("GREENSTREAM_MIN_KW", f"{min_kw} is above GREENSTREAM_MAX_KW {max_kw}")
    peak_start = _time(env, "GREENSTREAM_PEAK_START", time(17, 0))
    peak_end = _time(env, "GREENSTREAM_PEAK_END", time(21, 0))
    if peak_start >= peak_end:
        raise ConfigurationError("GREENSTREAM_PEAK_START", "must be before GREENSTREAM_PEAK_END")
    rules = RulesConfig(
        partitions_start=_date(env, "GREENSTREAM_PARTITIONS_START", date(2024, 1, 1)),
        min_kw=min_kw,
        max_kw=max_kw,
        timezone=timezone,
        peak_start=peak_start,
        peak_end=peak_end,
        hemisphere=hemisphere,
        stuck_variance_kw2=_number(env, "GREENSTREAM_STUCK_VARIANCE_KW2", 0.01, minimum=0),
        stuck_min_readings=_number(env, "GREENSTREAM_STUCK_MIN_READINGS", 48, int, minimum=2),
        spike_sigmas=_number(env, "GREENSTREAM_SPIKE_SIGMAS", 4.0, minimum=0),
        spike_min_readings=_number(env, "GREENSTREAM_SPIKE_MIN_READINGS", 96, int, minimum=2),
        gap_max_missing_rate=_number(env, "GREENSTREAM_GAP_MAX_MISSING_RATE", 0.20, minimum=0),
    )
    return Settings(
        s3_endpoint_url=s3,
        bucket=bucket,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_region=_text(env, "AWS_REGION", "us-east-1"),
        database_url=_url(env, "GREENSTREAM_DATABASE_URL", ("postgresql", "postgres")),
        data_dir=Path(_text(env, "GREENSTREAM_DATA_DIR", ".greenstream")).absolute(),
        lookback_days=_number(env, "GREENSTREAM_LOOKBACK_DAYS", 7, int, minimum=1),
        retention_days=_number(env, "GREENSTREAM_RETENTION_DAYS", 90, int, minimum=1),
        schedule_timezone=_timezone(env, "GREENSTREAM_SCHEDULE_TIMEZONE", timezone),
        check_warn_share=_number(env, "GREENSTREAM_CHECK_WARN_SHARE", 0.05, minimum=0),
        rules=rules,
        reading_limits=_reading_limits(env),
    )


def _reading_limits(env: dict) -> ReadingLimits:
    """SPEC §1 limits on what is read from a landing file: positive whole numbers."""
    spec = ReadingLimits()
    return ReadingLimits(
        max_object_bytes=_number(env, "GREENSTREAM_MAX_OBJECT_BYTES", spec.max_object_bytes, int, minimum=1),
        max_line_bytes=_number(env, "GREENSTREAM_MAX_LINE_BYTES", spec.max_line_bytes, int, minimum=1),
        max_stored_chars=_number(env, "GREENSTREAM_MAX_STORED_CHARS", spec.max_stored_chars, int, minimum=1),
        read_budget_bytes=_number(env, "GREENSTREAM_READ_BUDGET_BYTES", spec.read_budget_bytes, int, minimum=1),
    )
