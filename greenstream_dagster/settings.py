"""Configuration from the environment (SPEC §7, §8), validated at start.

One code path for every environment: S3 is an endpoint URL, PostgreSQL a
connection URL. When either is unset the embedded server is used. A bad value
fails at start with a ConfigurationError that names the setting.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from urllib.parse import urlparse

from greenstream_dagster.rules.config import RulesConfig, RulesConfigError, check_timezone
from greenstream_dagster.rules.reading_limits import ReadingLimits


class ConfigurationError(ValueError):
    """A setting has a value the platform cannot start with."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


# Fields of RulesConfig and the variable each comes from, so a rules error names the setting.
RULES_SETTINGS = {
    "partitions_start": "GREENSTREAM_PARTITIONS_START",
    "min_kw": "GREENSTREAM_MIN_KW",
    "max_kw": "GREENSTREAM_MAX_KW",
    "timezone": "GREENSTREAM_TIMEZONE",
    "peak_start": "GREENSTREAM_PEAK_START",
    "peak_end": "GREENSTREAM_PEAK_END",
    "hemisphere": "GREENSTREAM_HEMISPHERE",
    "stuck_variance_kw2": "GREENSTREAM_STUCK_VARIANCE_KW2",
    "stuck_min_readings": "GREENSTREAM_STUCK_MIN_READINGS",
    "spike_sigmas": "GREENSTREAM_SPIKE_SIGMAS",
    "spike_min_readings": "GREENSTREAM_SPIKE_MIN_READINGS",
    "gap_max_missing_rate": "GREENSTREAM_GAP_MAX_MISSING_RATE",
    "silent_lookback_days": "GREENSTREAM_SILENT_LOOKBACK_DAYS",
    "max_estimate_slots": "GREENSTREAM_MAX_ESTIMATE_SLOTS",
}

# Plain ASCII decimals only: Python's int()/float() also take "nan", "inf", "1_000" and
# non-ASCII digits ("٣"), none of which anyone means in a threshold.
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
# What botocore accepts as a region name.
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
# Counts of days: a look-back lists every day folder on each sensor evaluation; a
# retention beyond a century is a typo, and either overflows date arithmetic long before int does.
MAX_LOOKBACK_DAYS = 366
MAX_RETENTION_DAYS = 36500
MAX_SHARDS = 4096
# Dagster's executors a run's steps can be placed by (SPEC §10): one process, processes on
# this machine, a container per step (the compose stack), a Kubernetes job per step.
EXECUTORS = ("in_process", "multiprocess", "docker", "k8s")


def _text(env: dict, name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _shown(raw: str) -> str:
    """The offending value as shown in an error: bounded and escaped (it may be anything)."""
    return repr(raw[:40] + ("…" if len(raw) > 40 else ""))


def _number(env: dict, name: str, default: float, *, minimum: float | None = None,
            maximum: float | None = None, above: float | None = None) -> float:
    """A finite decimal within bounds; NaN and infinities are refused (they switch comparisons off)."""
    raw = _text(env, name)
    if raw is None:
        return default
    if _DECIMAL.fullmatch(raw) is None:
        raise ConfigurationError(name, f"expected a finite decimal number, got {_shown(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise ConfigurationError(name, f"must be a finite number, got {_shown(raw)}")
    _bounds(name, value, raw, minimum, maximum, above)
    return value


def _count(env: dict, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    if _WHOLE.fullmatch(raw) is None or len(raw) > 18:
        raise ConfigurationError(name, f"expected a whole number, got {_shown(raw)}")
    value = int(raw)
    _bounds(name, value, raw, minimum, maximum, None)
    return value


def _bounds(name, value, raw, minimum, maximum, above) -> None:
    if minimum is not None and value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {_shown(raw)}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(name, f"must be at most {maximum}, got {_shown(raw)}")
    if above is not None and value <= above:
        raise ConfigurationError(name, f"must be above {above}, got {_shown(raw)}")


def _date(env: dict, name: str, default: date) -> date:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        if _DATE.fullmatch(raw) is None:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigurationError(name, f"expected a date YYYY-MM-DD, got {_shown(raw)}") from None


def _time(env: dict, name: str, default: time) -> time:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        if _TIME.fullmatch(raw) is None:
            raise ValueError(raw)
        return time.fromisoformat(raw)
    except ValueError:
        raise ConfigurationError(name, f"expected a local time HH:MM, got {_shown(raw)}") from None


def _timezone(env: dict, name: str, default: str) -> str:
    raw = _text(env, name, default)
    try:
        check_timezone(name, raw)
    except RulesConfigError as error:
        raise ConfigurationError(name, error.problem) from None
    return raw


def _url(env: dict, name: str, schemes: tuple[str, ...], *, credentials: bool) -> str | None:
    """A URL with one of `schemes` and a host. Never echoed: it may hold a password."""
    raw = _text(env, name)
    if raw is None:
        return None
    if any(ord(c) < 33 or ord(c) == 127 for c in raw):
        raise ConfigurationError(name, "the URL holds a space or a control character")
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ConfigurationError(name, f"expected a URL with scheme {' or '.join(schemes)} and a host")
    try:
        port = parsed.port
    except ValueError:
        raise ConfigurationError(name, "the URL's port is not a number from 1 to 65535") from None
    if port == 0:
        raise ConfigurationError(name, "the URL's port is not a number from 1 to 65535")
    if not credentials and (parsed.username or parsed.password):
        # They would be logged wherever the endpoint is shown; S3 takes them from AWS_* only.
        raise ConfigurationError(name, "must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return raw


def _bucket(env: dict) -> str:
    """S3's bucket naming rules (the strictest of AWS, MinIO and SeaweedFS)."""
    bucket = _text(env, "GREENSTREAM_BUCKET", "greenstream")
    if _BUCKET.fullmatch(bucket) is None or ".." in bucket or _IPV4.fullmatch(bucket):
        raise ConfigurationError(
            "GREENSTREAM_BUCKET",
            f"not a valid S3 bucket name: {_shown(bucket)} (3-63 lowercase letters, digits, dots and hyphens)",
        )
    return bucket


def _region(env: dict) -> str:
    region = _text(env, "AWS_REGION", "us-east-1")
    if _REGION.fullmatch(region) is None:
        raise ConfigurationError("AWS_REGION", f"not a region name: {_shown(region)}")
    return region


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
    sensor_interval_seconds: int = 15  # how often the landing sensor and the late-data cascade evaluate
    day_run_spacing_seconds: int = 70  # at most one sensor run of a day per this many seconds
    silent_warn_share: float = 0.01  # §3a: WARN when more of the known fleet is silent
    freshness_hours: float = 2.0  # §3a: the landing zone is stale after this long without a new object
    # §10 scale-out: a day is split by meter into shards; 0 shards: as many as the fleet needs.
    shards: int = 0
    meters_per_shard: int = 50_000
    executor: str = "in_process"  # where a run's steps (a day's shards among them) run, see EXECUTORS
    max_concurrent_steps: int = 2  # at once within one run (multiprocess, docker, k8s)
    rules: RulesConfig = RulesConfig()
    reading_limits: ReadingLimits = ReadingLimits()

    @property
    def partitions_start(self) -> date:
        return self.rules.partitions_start


def load_settings(env: dict | None = None) -> Settings:
    """Read and validate every setting; raise ConfigurationError naming the first bad one."""
    env = dict(os.environ if env is None else env)
    s3 = _url(env, "GREENSTREAM_S3_ENDPOINT_URL", ("http", "https"), credentials=False)
    key_id = _text(env, "AWS_ACCESS_KEY_ID")
    secret = _text(env, "AWS_SECRET_ACCESS_KEY")
    if s3 is not None and (key_id is None) != (secret is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        raise ConfigurationError(missing, "must be set together with the other AWS credential")
    bucket = _bucket(env)
    region = _region(env)
    database_url = _url(env, "GREENSTREAM_DATABASE_URL", ("postgresql", "postgres"), credentials=True)
    timezone = _timezone(env, "GREENSTREAM_TIMEZONE", "UTC")
    hemisphere = _text(env, "GREENSTREAM_HEMISPHERE", "north").lower()
    if hemisphere not in ("north", "south"):
        raise ConfigurationError("GREENSTREAM_HEMISPHERE", f"expected north or south, got {_shown(hemisphere)}")
    try:
        # The bounds of the rules live in RulesConfig (one place, also for run config);
        # here only what text can get wrong before that.
        rules = RulesConfig(
            partitions_start=_date(env, "GREENSTREAM_PARTITIONS_START", date(2024, 1, 1)),
            min_kw=_number(env, "GREENSTREAM_MIN_KW", 0.0),
            max_kw=_number(env, "GREENSTREAM_MAX_KW", 100.0),
            timezone=timezone,
            peak_start=_time(env, "GREENSTREAM_PEAK_START", time(17, 0)),
            peak_end=_time(env, "GREENSTREAM_PEAK_END", time(21, 0)),
            hemisphere=hemisphere,
            stuck_variance_kw2=_number(env, "GREENSTREAM_STUCK_VARIANCE_KW2", 0.01, above=0),
            stuck_min_readings=_count(env, "GREENSTREAM_STUCK_MIN_READINGS", 48, minimum=2),
            spike_sigmas=_number(env, "GREENSTREAM_SPIKE_SIGMAS", 4.0, above=0),
            spike_min_readings=_count(env, "GREENSTREAM_SPIKE_MIN_READINGS", 96, minimum=2),
            gap_max_missing_rate=_number(env, "GREENSTREAM_GAP_MAX_MISSING_RATE", 0.20, minimum=0, maximum=1),
            silent_lookback_days=_count(env, "GREENSTREAM_SILENT_LOOKBACK_DAYS", 30, minimum=1, maximum=366),
            max_estimate_slots=_count(env, "GREENSTREAM_MAX_ESTIMATE_SLOTS", 4, minimum=0),
        )
    except RulesConfigError as error:
        setting = RULES_SETTINGS.get(error.field, error.field)
        raise ConfigurationError(setting, error.problem) from None
    return Settings(
        s3_endpoint_url=s3,
        bucket=bucket,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_region=region,
        database_url=database_url,
        data_dir=Path(_text(env, "GREENSTREAM_DATA_DIR", ".greenstream")).absolute(),
        lookback_days=_count(env, "GREENSTREAM_LOOKBACK_DAYS", 7, minimum=1, maximum=MAX_LOOKBACK_DAYS),
        retention_days=_count(env, "GREENSTREAM_RETENTION_DAYS", 90, minimum=1, maximum=MAX_RETENTION_DAYS),
        schedule_timezone=_timezone(env, "GREENSTREAM_SCHEDULE_TIMEZONE", timezone),
        check_warn_share=_number(env, "GREENSTREAM_CHECK_WARN_SHARE", 0.05, minimum=0, maximum=1),
        sensor_interval_seconds=_count(env, "GREENSTREAM_SENSOR_INTERVAL_SECONDS", 15, minimum=5, maximum=3600),
        day_run_spacing_seconds=_count(env, "GREENSTREAM_DAY_RUN_SPACING_SECONDS", 70, minimum=0, maximum=86400),
        silent_warn_share=_number(env, "GREENSTREAM_SILENT_WARN_SHARE", 0.01, minimum=0, maximum=1),
        freshness_hours=_number(env, "GREENSTREAM_FRESHNESS_HOURS", 2.0, above=0, maximum=24 * 366),
        shards=_count(env, "GREENSTREAM_SHARDS", 0, minimum=0, maximum=MAX_SHARDS),
        meters_per_shard=_count(env, "GREENSTREAM_METERS_PER_SHARD", 50_000, minimum=1, maximum=10_000_000),
        executor=_choice(env, "GREENSTREAM_EXECUTOR", EXECUTORS),
        max_concurrent_steps=_count(env, "GREENSTREAM_MAX_CONCURRENT_STEPS", 2, minimum=1, maximum=1024),
        rules=rules,
        reading_limits=_reading_limits(env),
    )


def _choice(env: dict, name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default)."""
    value = _text(env, name, choices[0]).lower()
    if value not in choices:
        raise ConfigurationError(name, f"expected one of {', '.join(choices)}, got {_shown(value)}")
    return value


def _reading_limits(env: dict) -> ReadingLimits:
    """SPEC §1 limits on what is read from a landing file: positive whole numbers."""
    spec = ReadingLimits()
    return ReadingLimits(
        max_object_bytes=_count(env, "GREENSTREAM_MAX_OBJECT_BYTES", spec.max_object_bytes, minimum=1),
        max_line_bytes=_count(env, "GREENSTREAM_MAX_LINE_BYTES", spec.max_line_bytes, minimum=1),
        max_stored_chars=_count(env, "GREENSTREAM_MAX_STORED_CHARS", spec.max_stored_chars, minimum=1),
        read_budget_bytes=_count(env, "GREENSTREAM_READ_BUDGET_BYTES", spec.read_budget_bytes, minimum=1),
    )
