"""Dagster resources: the S3 bucket, the operational store and the rules' configuration.

Each resource reads the SPEC §8 environment at run time (so secrets never sit
in run config or the UI) and falls back to the embedded servers when nothing
is configured, exactly like the command line. Configured services are not
probed here (the commands and the code location's load probe them at start,
see defs/code_location_start.py): an outage during a run is a storage fault
that the step retries. Fields override the environment, which is what tests
and the launchpad use.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from datetime import date, time

import dagster as dg

from greenstream_dagster.rules.config import RulesConfig, RulesConfigError
from greenstream_dagster.services.runtime import ResolvedServices, resolve_services
from greenstream_dagster.settings import ConfigurationError, Settings, load_settings
from greenstream_dagster.storage.operational.migrate import apply_migrations
from greenstream_dagster.storage.operational.server_wait import SERVER_WAIT_SECONDS, wait_for_server
from greenstream_dagster.storage.s3 import s3_client

_lock = threading.Lock()
_resolved: dict[tuple, ResolvedServices] = {}
_migrated: set[str] = set()


def _embedded(settings: Settings, *, database: bool) -> ResolvedServices:
    """Start or reuse the embedded server once per process, only for what is not configured."""
    key = (settings.data_dir, settings.bucket, database)
    with _lock:
        if key not in _resolved:
            _resolved[key] = resolve_services(settings, s3=not database, database=database)
        return _resolved[key]


class S3Resource(dg.ConfigurableResource):
    """The bucket holding the landing zone, the staging frames, the dead letters and the lake."""

    endpoint_url: str | None = None  # None: GREENSTREAM_S3_ENDPOINT_URL, else the embedded S3
    bucket: str = "greenstream"  # definitions set it from GREENSTREAM_BUCKET

    def _settings(self) -> Settings:
        settings = dataclasses.replace(load_settings(), bucket=self.bucket)
        if self.endpoint_url is not None:
            settings = dataclasses.replace(settings, s3_endpoint_url=self.endpoint_url)
        return settings

    def client(self):
        settings = self._settings()
        # A configured endpoint is used as is: no probe, so an outage surfaces as a
        # retryable storage fault in the step instead of a configuration error.
        location = settings if settings.s3_endpoint_url is not None else _embedded(settings, database=False)
        return s3_client(location)


class OperationalStoreResource(dg.ConfigurableResource):
    """The PostgreSQL operational store; migrations are applied on first use in each process.

    `url()` is where every storage attempt meets the server: it first waits out a
    short outage (see storage/operational/server_wait.py for why and how long).
    """

    database_url: str | None = None  # None: GREENSTREAM_DATABASE_URL, else the embedded PostgreSQL
    server_wait_seconds: float = SERVER_WAIT_SECONDS

    def url(self) -> str:
        settings = load_settings()
        if self.database_url is not None:
            settings = dataclasses.replace(settings, database_url=self.database_url)
        url = settings.database_url or _embedded(settings, database=True).database_url
        wait_for_server(url, self.server_wait_seconds)
        with _lock:
            if url not in _migrated:
                apply_migrations(url)
                _migrated.add(url)
        return url


_SPEC = RulesConfig()  # the spec's defaults live in RulesConfig alone


class RulesResource(dg.ConfigurableResource):
    """Thresholds and windows of SPEC §2–4 and §3b, shown in the UI and overridable per run.

    Dates and times are text here because run config is JSON.
    """

    partitions_start: str = _SPEC.partitions_start.isoformat()
    min_kw: float = _SPEC.min_kw
    max_kw: float = _SPEC.max_kw
    timezone: str = _SPEC.timezone
    peak_start: str = _SPEC.peak_start.isoformat(timespec="minutes")
    peak_end: str = _SPEC.peak_end.isoformat(timespec="minutes")
    hemisphere: str = _SPEC.hemisphere
    window_days: int = _SPEC.window_days
    stuck_variance_kw2: float = _SPEC.stuck_variance_kw2
    stuck_min_readings: int = _SPEC.stuck_min_readings
    spike_sigmas: float = _SPEC.spike_sigmas
    spike_min_readings: int = _SPEC.spike_min_readings
    gap_max_missing_rate: float = _SPEC.gap_max_missing_rate
    silent_lookback_days: int = _SPEC.silent_lookback_days
    max_estimate_slots: int = _SPEC.max_estimate_slots  # §3b; 0 switches estimation off
    check_warn_share: float = 0.05  # WARN when a fault hits more than this share of meters
    silent_warn_share: float = 0.01  # WARN when more of the known fleet is silent (§3a)

    @classmethod
    def from_settings(cls, settings: Settings) -> "RulesResource":
        rules = settings.rules
        values = {f.name: getattr(rules, f.name) for f in dataclasses.fields(rules)}
        values = {k: (v.isoformat(timespec="minutes") if isinstance(v, time) else v) for k, v in values.items()}
        values["partitions_start"] = rules.partitions_start.isoformat()
        return cls(**values, check_warn_share=settings.check_warn_share,
                   silent_warn_share=settings.silent_warn_share)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Values overridden in a run's config are checked when the run starts, as the
        environment's are at load: a NaN threshold would silently switch its rule off."""
        self.config()

    def config(self) -> RulesConfig:
        """The checked RulesConfig; a bad value raises ConfigurationError naming its run config field."""
        for name in ("check_warn_share", "silent_warn_share"):
            share = getattr(self, name)
            if not (math.isfinite(share) and 0 <= share <= 1):
                raise ConfigurationError(f"{_RUN_CONFIG}.{name}", f"is a share: must be from 0 to 1, got {share!r}")
        try:
            return RulesConfig(
                partitions_start=_parsed(date.fromisoformat, self.partitions_start, "partitions_start"),
                min_kw=self.min_kw,
                max_kw=self.max_kw,
                timezone=self.timezone,
                peak_start=_parsed(time.fromisoformat, self.peak_start, "peak_start"),
                peak_end=_parsed(time.fromisoformat, self.peak_end, "peak_end"),
                hemisphere=self.hemisphere,
                window_days=self.window_days,
                stuck_variance_kw2=self.stuck_variance_kw2,
                stuck_min_readings=self.stuck_min_readings,
                spike_sigmas=self.spike_sigmas,
                spike_min_readings=self.spike_min_readings,
                gap_max_missing_rate=self.gap_max_missing_rate,
                silent_lookback_days=self.silent_lookback_days,
                max_estimate_slots=self.max_estimate_slots,
            )
        except RulesConfigError as error:
            raise ConfigurationError(f"{_RUN_CONFIG}.{error.field}", error.problem) from None


_RUN_CONFIG = "resources.rules.config"  # where the launchpad holds these fields


def _parsed(parse, text: str, field: str):
    try:
        return parse(text)
    except ValueError:
        raise ConfigurationError(f"{_RUN_CONFIG}.{field}", f"cannot read {text[:40]!r}") from None
