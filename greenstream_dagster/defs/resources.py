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
import threading

import dagster as dg
import pydantic

from greenstream_dagster.rules.config import RulesConfig, RulesConfigError
from greenstream_dagster.rules.declared_settings import Refused, declared_settings
from greenstream_dagster.services.runtime import ResolvedServices, resolve_services
from greenstream_dagster.settings import ConfigurationError, Settings, load_settings
from greenstream_dagster.storage.operational.migrate import apply_migrations
from greenstream_dagster.storage.operational.server_wait import SERVER_WAIT_SECONDS, wait_unless_reached
from greenstream_dagster.storage.operational.store import OperationalStore
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

    `url()` is where a storage attempt meets the server: the first time in a process, and
    again after a connection found the server gone, it first waits out a short outage (see
    storage/operational/server_wait.py for why, when and how long); otherwise it returns at once.
    """

    database_url: str | None = None  # None: GREENSTREAM_DATABASE_URL, else the embedded PostgreSQL
    server_wait_seconds: float = SERVER_WAIT_SECONDS

    def url(self) -> str:
        settings = load_settings()
        if self.database_url is not None:
            settings = dataclasses.replace(settings, database_url=self.database_url)
        url = settings.database_url or _embedded(settings, database=True).database_url
        wait_unless_reached(url, self.server_wait_seconds)
        with _lock:
            if url not in _migrated:
                apply_migrations(url)
                _migrated.add(url)
        return url

    def store(self) -> OperationalStore:
        """The store at `url()`, for the storage functions that take one."""
        return OperationalStore(self.url())


_RUN_CONFIG = "resources.rules.config"  # where the launchpad holds RulesResource's fields
# The launchpad's fields: every rule, and the settings marked per_run (the checks' WARN shares).
PER_RUN = declared_settings(RulesConfig) + tuple(s for s in declared_settings(Settings) if s.per_run)


class _Rules(dg.ConfigurableResource):
    """Thresholds and windows of SPEC §2–4 and §3b, shown in the UI and overridable per run.

    Its fields are made from the declarations (PER_RUN); dates and times are text there
    because run config is JSON.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> "RulesResource":
        return cls(**{s.field: s.launchpad_value(getattr(settings.rules if s.owner is RulesConfig else settings, s.field))
                      for s in PER_RUN})

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Values overridden in a run's config are checked when the run starts, as the
        environment's are at load: a NaN threshold would silently switch its rule off."""
        self.config()

    def config(self) -> RulesConfig:
        """The checked RulesConfig; a bad value raises ConfigurationError naming its run config field."""
        values = {}
        for setting in PER_RUN:
            value = getattr(self, setting.field)
            try:
                text = setting.kind.text is not None and isinstance(value, str)  # a date or a time (run config is JSON)
                values[setting.field] = setting.read(value) if text else setting.check(value)
            except Refused as refused:
                raise ConfigurationError(f"{_RUN_CONFIG}.{setting.field}", refused.problem) from None
        try:
            return RulesConfig(**{s.field: values[s.field] for s in declared_settings(RulesConfig)})
        except RulesConfigError as error:
            raise ConfigurationError(f"{_RUN_CONFIG}.{error.field}", error.problem) from None


RulesResource = pydantic.create_model(
    "RulesResource", __base__=_Rules, __module__=__name__, __doc__=_Rules.__doc__,
    **{s.field: (s.kind.launchpad_type, pydantic.Field(default=s.launchpad_value(s.default), description=s.doc)) for s in PER_RUN},
)
