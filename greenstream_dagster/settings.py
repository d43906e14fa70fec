"""Configuration from the environment (SPEC §7, §8), validated at start.

One code path for every environment: S3 is an endpoint URL, PostgreSQL a
connection URL. When either is unset the embedded server is used. A bad value
fails at start with a ConfigurationError that names the setting.

Every setting is declared once, on its field (rules/declared_settings.py): here
the platform's, in RulesConfig the rules', in ReadingLimits the reader's.
`ENVIRONMENT` is the whole table; this module is the only one that reads it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from greenstream_dagster.rules.config import MAX_LOOKBACK_DAYS, RulesConfig, RulesConfigError
from greenstream_dagster.rules.declared_settings import (
    CHOICE,
    COUNT,
    DECIMAL,
    PATH,
    TEXT,
    ZONE,
    Kind,
    Refused,
    Setting,
    declared,
    declared_settings,
    shown,
)
from greenstream_dagster.rules.reading_limits import ReadingLimits


class ConfigurationError(ValueError):
    """A setting has a value the platform cannot start with."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


def _url(schemes: tuple[str, ...], *, credentials: bool) -> Kind:
    """A URL with one of `schemes` and a host. Never echoed: it may hold a password."""

    def problem(raw: Any, _: Setting) -> str | None:
        if raw is None:
            return None  # unset: the embedded server
        if any(ord(c) < 33 or ord(c) == 127 for c in raw):
            return "the URL holds a space or a control character"
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not parsed.hostname:
            return f"expected a URL with scheme {' or '.join(schemes)} and a host"
        try:
            port = parsed.port
        except ValueError:
            port = 0
        if port == 0:
            return "the URL's port is not a number from 1 to 65535"
        if not credentials and (parsed.username or parsed.password):
            # They would be logged wherever the endpoint is shown; S3 takes them from AWS_* only.
            return "must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        return None

    return Kind(f"a URL with scheme {' or '.join(schemes)}", str, str, problem)


# S3's bucket naming rules (the strictest of AWS, MinIO and SeaweedFS).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
# What botocore accepts as a region name.
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


def _bucket_problem(bucket: Any, _: Setting) -> str | None:
    if _BUCKET.fullmatch(bucket) is None or ".." in bucket or _IPV4.fullmatch(bucket):
        return f"not a valid S3 bucket name: {shown(bucket)} (3-63 lowercase letters, digits, dots and hyphens)"
    return None


def _region_problem(region: Any, _: Setting) -> str | None:
    return None if _REGION.fullmatch(region) else f"not a region name: {shown(region)}"


S3_URL = _url(("http", "https"), credentials=False)
DATABASE_URL = _url(("postgresql", "postgres"), credentials=True)
BUCKET = Kind("an S3 bucket name", str, str, _bucket_problem)
REGION = Kind("a region name", str, str, _region_problem)

# Counts of days: a look-back lists every day folder on each sensor evaluation; a
# retention beyond a century is a typo, and either overflows date arithmetic long before int does.
MAX_RETENTION_DAYS = 36500
MAX_SHARDS = 4096
# Dagster's executors a run's steps can be placed by (SPEC §10): one process, processes on
# this machine, a container per step (the compose stack), a Kubernetes job per step.
EXECUTORS = ("in_process", "multiprocess", "docker", "k8s")


@dataclass(frozen=True)
class Settings:
    s3_endpoint_url: str | None = declared("GREENSTREAM_S3_ENDPOINT_URL", S3_URL, None, "S3 endpoint; unset: embedded S3")
    bucket: str = declared("GREENSTREAM_BUCKET", BUCKET, "greenstream", "landing zone, staging, dead letters and lake")
    aws_access_key_id: str | None = declared("AWS_ACCESS_KEY_ID", TEXT, None, "S3 credentials", repr=False)
    aws_secret_access_key: str | None = declared("AWS_SECRET_ACCESS_KEY", TEXT, None, "S3 credentials", repr=False)
    aws_region: str = declared("AWS_REGION", REGION, "us-east-1", "S3 region")
    database_url: str | None = declared("GREENSTREAM_DATABASE_URL", DATABASE_URL, None, "operational store; unset: embedded PostgreSQL",
                                        repr=False)
    data_dir: Path = declared("GREENSTREAM_DATA_DIR", PATH, Path(".greenstream"), "embedded servers' data and the sample")
    lookback_days: int = declared("GREENSTREAM_LOOKBACK_DAYS", COUNT, 7, "date folders the sensor lists",
                                  minimum=1, maximum=MAX_LOOKBACK_DAYS)
    retention_days: int = declared("GREENSTREAM_RETENTION_DAYS", COUNT, 90, "days kept in PostgreSQL",
                                   minimum=1, maximum=MAX_RETENTION_DAYS)
    # Unset: the rules' time zone (load_settings).
    schedule_timezone: str = declared("GREENSTREAM_SCHEDULE_TIMEZONE", ZONE, "UTC", "time zone of the 02:00 rollup")
    check_warn_share: float = declared("GREENSTREAM_CHECK_WARN_SHARE", DECIMAL, 0.05,
                                       "§3 a fault check WARNs above this share of meters", minimum=0, maximum=1, per_run=True)
    sensor_interval_seconds: int = declared("GREENSTREAM_SENSOR_INTERVAL_SECONDS", COUNT, 15,
                                            "how often the landing sensor and the late-data cascade evaluate", minimum=5, maximum=3600)
    day_run_spacing_seconds: int = declared("GREENSTREAM_DAY_RUN_SPACING_SECONDS", COUNT, 70,
                                            "at most one sensor run of a day per this many seconds", minimum=0, maximum=86400)
    silent_warn_share: float = declared("GREENSTREAM_SILENT_WARN_SHARE", DECIMAL, 0.01, "§3a WARN when more of the known fleet is silent",
                                        minimum=0, maximum=1, per_run=True)
    freshness_hours: float = declared("GREENSTREAM_FRESHNESS_HOURS", DECIMAL, 2.0,
                                      "§3a the landing zone is stale after this long without a new object", above=0, maximum=24 * 366)
    # §10 scale-out: a day is split by meter into shards.
    shards: int = declared("GREENSTREAM_SHARDS", COUNT, 0, "§10 meter shards of a day; 0: as many as the fleet needs",
                           minimum=0, maximum=MAX_SHARDS)
    meters_per_shard: int = declared("GREENSTREAM_METERS_PER_SHARD", COUNT, 50_000, "§10 with 0 shards: a shard per this many meters",
                                     minimum=1, maximum=10_000_000)
    parse_batch_bytes: int = declared("GREENSTREAM_PARSE_BATCH_BYTES", COUNT, 256 * 1024 * 1024,
                                      "§10 landing bytes parsed together; a day's raw read holds one batch",
                                      minimum=1)
    executor: str = declared("GREENSTREAM_EXECUTOR", CHOICE, EXECUTORS[0], "§10 where a run's steps (a day's shards among them) run",
                             choices=EXECUTORS)
    max_concurrent_steps: int = declared("GREENSTREAM_MAX_CONCURRENT_STEPS", COUNT, 2,
                                         "§10 steps of one run at once (multiprocess, docker, k8s)", minimum=1, maximum=1024)
    rules: RulesConfig = RulesConfig()
    reading_limits: ReadingLimits = ReadingLimits()

    @property
    def partitions_start(self) -> date:
        return self.rules.partitions_start


# Every variable load_settings reads, each declared once on its field.
ENVIRONMENT = tuple(s for cls in (Settings, RulesConfig, ReadingLimits) for s in declared_settings(cls) if s.env is not None)


def load_settings(env: dict | None = None) -> Settings:
    """Read and validate every setting; raise ConfigurationError naming the first bad one."""
    env = dict(os.environ if env is None else env)
    values = {cls: _read(env, cls) for cls in (Settings, RulesConfig, ReadingLimits)}
    platform = values[Settings]
    key_id, secret = platform["aws_access_key_id"], platform["aws_secret_access_key"]
    if platform["s3_endpoint_url"] is not None and (key_id is None) != (secret is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        raise ConfigurationError(missing, "must be set together with the other AWS credential")
    if _text(env, "GREENSTREAM_SCHEDULE_TIMEZONE") is None:
        platform["schedule_timezone"] = values[RulesConfig]["timezone"]
    platform["data_dir"] = platform["data_dir"].absolute()
    try:
        rules = RulesConfig(**values[RulesConfig])
    except RulesConfigError as error:
        # What one value cannot say (min_kw ≤ max_kw, the peak in order) names the field it is raised for.
        raise ConfigurationError(_variable(RulesConfig, error.field), error.problem) from None
    return Settings(**platform, rules=rules, reading_limits=ReadingLimits(**values[ReadingLimits]))


def _read(env: dict, cls: type) -> dict[str, Any]:
    """The declared fields of `cls` from the environment: the text read and checked, else the spec's default."""
    values = {}
    for setting in declared_settings(cls):
        text = _text(env, setting.env) if setting.env is not None else None
        try:
            values[setting.field] = setting.default if text is None else setting.read(text)
        except Refused as refused:
            raise ConfigurationError(setting.env, refused.problem) from None
    return values


def _text(env: dict, name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _variable(cls: type, field: str) -> str:
    return next((s.env for s in declared_settings(cls) if s.field == field and s.env is not None), field)
