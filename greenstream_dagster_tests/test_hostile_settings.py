"""Hostile settings (issue 8, SPEC §7): every bad value fails at start with one line naming the setting.

`SETTINGS_KINDS` is this part of the hostile corpus: one kind per entry, each a
bad environment and the setting its error must name. A threshold that is NaN or
infinite would otherwise switch its rule off without a word.
"""

from __future__ import annotations

import math

import dagster as dg
import pytest

from greenstream_dagster.defs.resources import RulesResource
from greenstream_dagster.rules.config import RulesConfig, RulesConfigError
from greenstream_dagster.settings import ConfigurationError, load_settings

_S3 = {"GREENSTREAM_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}

# (kind, environment, setting named by the error)
SETTINGS_KINDS = [
    ("max_kw NaN", {"GREENSTREAM_MAX_KW": "nan"}, "GREENSTREAM_MAX_KW"),
    ("max_kw NaN uppercase", {"GREENSTREAM_MAX_KW": "NaN"}, "GREENSTREAM_MAX_KW"),
    ("max_kw infinity", {"GREENSTREAM_MAX_KW": "inf"}, "GREENSTREAM_MAX_KW"),
    ("min_kw minus infinity", {"GREENSTREAM_MIN_KW": "-inf"}, "GREENSTREAM_MIN_KW"),
    ("max_kw overflows to infinity", {"GREENSTREAM_MAX_KW": "1e400"}, "GREENSTREAM_MAX_KW"),
    ("max_kw with a thousands comma", {"GREENSTREAM_MAX_KW": "1,000"}, "GREENSTREAM_MAX_KW"),
    ("max_kw with underscores", {"GREENSTREAM_MAX_KW": "1_000"}, "GREENSTREAM_MAX_KW"),
    ("max_kw with a unit", {"GREENSTREAM_MAX_KW": "100kW"}, "GREENSTREAM_MAX_KW"),
    ("min_kw above max_kw", {"GREENSTREAM_MIN_KW": "10", "GREENSTREAM_MAX_KW": "5"}, "GREENSTREAM_MIN_KW"),
    ("stuck variance NaN", {"GREENSTREAM_STUCK_VARIANCE_KW2": "nan"}, "GREENSTREAM_STUCK_VARIANCE_KW2"),
    ("stuck variance zero", {"GREENSTREAM_STUCK_VARIANCE_KW2": "0"}, "GREENSTREAM_STUCK_VARIANCE_KW2"),
    ("stuck variance negative", {"GREENSTREAM_STUCK_VARIANCE_KW2": "-0.01"}, "GREENSTREAM_STUCK_VARIANCE_KW2"),
    ("spike sigmas zero", {"GREENSTREAM_SPIKE_SIGMAS": "0"}, "GREENSTREAM_SPIKE_SIGMAS"),
    ("spike sigmas negative", {"GREENSTREAM_SPIKE_SIGMAS": "-4"}, "GREENSTREAM_SPIKE_SIGMAS"),
    ("spike sigmas infinity", {"GREENSTREAM_SPIKE_SIGMAS": "Infinity"}, "GREENSTREAM_SPIKE_SIGMAS"),
    ("missing rate above 1", {"GREENSTREAM_GAP_MAX_MISSING_RATE": "1.5"}, "GREENSTREAM_GAP_MAX_MISSING_RATE"),
    ("missing rate negative", {"GREENSTREAM_GAP_MAX_MISSING_RATE": "-0.2"}, "GREENSTREAM_GAP_MAX_MISSING_RATE"),
    ("missing rate as a percentage", {"GREENSTREAM_GAP_MAX_MISSING_RATE": "20%"}, "GREENSTREAM_GAP_MAX_MISSING_RATE"),
    ("warn share above 1", {"GREENSTREAM_CHECK_WARN_SHARE": "5"}, "GREENSTREAM_CHECK_WARN_SHARE"),
    ("warn share NaN", {"GREENSTREAM_CHECK_WARN_SHARE": "nan"}, "GREENSTREAM_CHECK_WARN_SHARE"),
    ("stuck count negative", {"GREENSTREAM_STUCK_MIN_READINGS": "-48"}, "GREENSTREAM_STUCK_MIN_READINGS"),
    ("stuck count one (no sample variance)", {"GREENSTREAM_STUCK_MIN_READINGS": "1"}, "GREENSTREAM_STUCK_MIN_READINGS"),
    ("spike count fractional", {"GREENSTREAM_SPIKE_MIN_READINGS": "96.5"}, "GREENSTREAM_SPIKE_MIN_READINGS"),
    ("spike count in non-ASCII digits", {"GREENSTREAM_SPIKE_MIN_READINGS": "٩٦"}, "GREENSTREAM_SPIKE_MIN_READINGS"),
    ("estimate slots NaN", {"GREENSTREAM_MAX_ESTIMATE_SLOTS": "nan"}, "GREENSTREAM_MAX_ESTIMATE_SLOTS"),
    ("estimate slots with underscores", {"GREENSTREAM_MAX_ESTIMATE_SLOTS": "1_000"}, "GREENSTREAM_MAX_ESTIMATE_SLOTS"),
    ("estimate slots beyond a day", {"GREENSTREAM_MAX_ESTIMATE_SLOTS": "1000"}, "GREENSTREAM_MAX_ESTIMATE_SLOTS"),
    ("estimate slots negative", {"GREENSTREAM_MAX_ESTIMATE_SLOTS": "-4"}, "GREENSTREAM_MAX_ESTIMATE_SLOTS"),
    ("estimate slots in non-ASCII digits", {"GREENSTREAM_MAX_ESTIMATE_SLOTS": "٤"}, "GREENSTREAM_MAX_ESTIMATE_SLOTS"),
    ("estimate slots fractional", {"GREENSTREAM_MAX_ESTIMATE_SLOTS": "2.5"}, "GREENSTREAM_MAX_ESTIMATE_SLOTS"),
    ("look-back not a number", {"GREENSTREAM_LOOKBACK_DAYS": "seven"}, "GREENSTREAM_LOOKBACK_DAYS"),
    ("look-back zero", {"GREENSTREAM_LOOKBACK_DAYS": "0"}, "GREENSTREAM_LOOKBACK_DAYS"),
    ("look-back beyond a year", {"GREENSTREAM_LOOKBACK_DAYS": "100000"}, "GREENSTREAM_LOOKBACK_DAYS"),
    ("run spacing negative", {"GREENSTREAM_DAY_RUN_SPACING_SECONDS": "-5"}, "GREENSTREAM_DAY_RUN_SPACING_SECONDS"),
    ("run spacing over a day", {"GREENSTREAM_DAY_RUN_SPACING_SECONDS": "100000"}, "GREENSTREAM_DAY_RUN_SPACING_SECONDS"),
    ("retention zero", {"GREENSTREAM_RETENTION_DAYS": "0"}, "GREENSTREAM_RETENTION_DAYS"),
    ("retention of 5000 digits", {"GREENSTREAM_RETENTION_DAYS": "9" * 5000}, "GREENSTREAM_RETENTION_DAYS"),
    ("unknown time zone", {"GREENSTREAM_TIMEZONE": "Mars/Olympus"}, "GREENSTREAM_TIMEZONE"),
    ("time zone Polars does not know", {"GREENSTREAM_TIMEZONE": "right/UTC"}, "GREENSTREAM_TIMEZONE"),
    ("time zone path traversal", {"GREENSTREAM_TIMEZONE": "../../etc/passwd"}, "GREENSTREAM_TIMEZONE"),
    ("unknown schedule time zone", {"GREENSTREAM_SCHEDULE_TIMEZONE": "Nowhere"}, "GREENSTREAM_SCHEDULE_TIMEZONE"),
    ("impossible start date", {"GREENSTREAM_PARTITIONS_START": "2024-13-01"}, "GREENSTREAM_PARTITIONS_START"),
    ("start date in basic format", {"GREENSTREAM_PARTITIONS_START": "20240101"}, "GREENSTREAM_PARTITIONS_START"),
    ("start date in year 1", {"GREENSTREAM_PARTITIONS_START": "0001-01-01"}, "GREENSTREAM_PARTITIONS_START"),
    ("peak start with an offset", {"GREENSTREAM_PEAK_START": "17:00+02:00"}, "GREENSTREAM_PEAK_START"),
    ("peak start after peak end", {"GREENSTREAM_PEAK_START": "22:00"}, "GREENSTREAM_PEAK_START"),
    ("peak end hour 24", {"GREENSTREAM_PEAK_END": "24:00"}, "GREENSTREAM_PEAK_END"),
    ("hemisphere east", {"GREENSTREAM_HEMISPHERE": "east"}, "GREENSTREAM_HEMISPHERE"),
    ("S3 endpoint without scheme", {"GREENSTREAM_S3_ENDPOINT_URL": "localhost:9000"}, "GREENSTREAM_S3_ENDPOINT_URL"),
    ("S3 endpoint with ftp scheme", {"GREENSTREAM_S3_ENDPOINT_URL": "ftp://127.0.0.1:9000"}, "GREENSTREAM_S3_ENDPOINT_URL"),
    ("S3 endpoint port out of range", {"GREENSTREAM_S3_ENDPOINT_URL": "http://127.0.0.1:70000"}, "GREENSTREAM_S3_ENDPOINT_URL"),
    ("S3 endpoint port zero", {"GREENSTREAM_S3_ENDPOINT_URL": "http://127.0.0.1:0"}, "GREENSTREAM_S3_ENDPOINT_URL"),
    ("S3 endpoint with credentials in it", {"GREENSTREAM_S3_ENDPOINT_URL": "http://key:secret@127.0.0.1:9000"},
     "GREENSTREAM_S3_ENDPOINT_URL"),
    ("S3 endpoint with a newline inside", {"GREENSTREAM_S3_ENDPOINT_URL": "http://127.0.0.1:9000/\nx"},
     "GREENSTREAM_S3_ENDPOINT_URL"),
    ("access key without secret", {**_S3, "AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
    ("secret without access key", {**_S3, "AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID"),
    ("region with a space", {"AWS_REGION": "us east 1"}, "AWS_REGION"),
    ("bucket with uppercase and underscore", {"GREENSTREAM_BUCKET": "Bad_Bucket"}, "GREENSTREAM_BUCKET"),
    ("bucket too short", {"GREENSTREAM_BUCKET": "ab"}, "GREENSTREAM_BUCKET"),
    ("bucket starting with a dot", {"GREENSTREAM_BUCKET": ".landing"}, "GREENSTREAM_BUCKET"),
    ("bucket with two dots", {"GREENSTREAM_BUCKET": "land..ing"}, "GREENSTREAM_BUCKET"),
    ("bucket shaped like an IP address", {"GREENSTREAM_BUCKET": "192.168.1.1"}, "GREENSTREAM_BUCKET"),
    ("database URL of another engine", {"GREENSTREAM_DATABASE_URL": "mysql://x@h/db"}, "GREENSTREAM_DATABASE_URL"),
    ("database URL without host", {"GREENSTREAM_DATABASE_URL": "postgresql:///greenstream"}, "GREENSTREAM_DATABASE_URL"),
    ("database URL port not a number", {"GREENSTREAM_DATABASE_URL": "postgresql://u:pw@h:port/db"},
     "GREENSTREAM_DATABASE_URL"),
    ("shards negative", {"GREENSTREAM_SHARDS": "-1"}, "GREENSTREAM_SHARDS"),
    ("shards beyond the limit", {"GREENSTREAM_SHARDS": "100000"}, "GREENSTREAM_SHARDS"),
    ("meters per shard zero", {"GREENSTREAM_METERS_PER_SHARD": "0"}, "GREENSTREAM_METERS_PER_SHARD"),
    ("meters per shard as a decimal", {"GREENSTREAM_METERS_PER_SHARD": "5e4"}, "GREENSTREAM_METERS_PER_SHARD"),
    ("executor unknown", {"GREENSTREAM_EXECUTOR": "ray-cluster"}, "GREENSTREAM_EXECUTOR"),
    ("concurrent steps zero", {"GREENSTREAM_MAX_CONCURRENT_STEPS": "0"}, "GREENSTREAM_MAX_CONCURRENT_STEPS"),
]


@pytest.mark.parametrize("env, setting", [pytest.param(env, setting, id=kind) for kind, env, setting in SETTINGS_KINDS])
def test_a_bad_setting_fails_naming_it_in_one_bounded_line(env, setting):
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert raised.value.setting == setting
    assert message.startswith(f"{setting}: ")
    assert "\n" not in message and len(message) < 300


def test_the_corpus_has_distinct_kinds():
    kinds = [kind for kind, _, _ in SETTINGS_KINDS]
    assert len(kinds) == len(set(kinds)) >= 12


def test_a_database_password_is_never_echoed():
    url = "postgresql://user:hunter2@db.example:notaport/db"
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"GREENSTREAM_DATABASE_URL": url})
    assert "hunter2" not in str(raised.value)


def test_sane_values_at_the_edges_are_accepted():
    settings = load_settings({
        "GREENSTREAM_MIN_KW": "-5", "GREENSTREAM_MAX_KW": "1e3", "GREENSTREAM_GAP_MAX_MISSING_RATE": "1",
        "GREENSTREAM_CHECK_WARN_SHARE": "0", "GREENSTREAM_SPIKE_SIGMAS": ".5", "GREENSTREAM_STUCK_MIN_READINGS": "2",
        "GREENSTREAM_LOOKBACK_DAYS": "366", "GREENSTREAM_PEAK_START": "06:30:00", "AWS_REGION": "eu-west-1",
        "GREENSTREAM_BUCKET": "meters.prod-1",
    })
    assert (settings.rules.min_kw, settings.rules.max_kw) == (-5.0, 1000.0)
    assert settings.rules.gap_max_missing_rate == 1.0 and settings.rules.spike_sigmas == 0.5
    assert settings.lookback_days == 366 and settings.check_warn_share == 0.0


@pytest.mark.parametrize("field, value", [
    ("max_kw", math.nan), ("min_kw", -math.inf), ("spike_sigmas", 0.0), ("stuck_variance_kw2", math.nan),
    ("gap_max_missing_rate", 1.01), ("stuck_min_readings", 0), ("window_days", 0), ("timezone", "posixrules"),
    ("max_estimate_slots", -1), ("max_estimate_slots", 95), ("max_estimate_slots", 4.0), ("max_estimate_slots", True),
])
def test_the_rules_refuse_the_same_values_however_they_are_made(field, value):
    with pytest.raises(RulesConfigError) as raised:
        RulesConfig(**{field: value})
    assert raised.value.field == field


@dg.asset
def _thresholds(rules: RulesResource) -> None:
    rules.config()


@pytest.mark.parametrize("field, value", [
    ("max_kw", math.nan), ("spike_sigmas", -1.0), ("gap_max_missing_rate", 2.0), ("check_warn_share", math.inf),
    ("timezone", "Mars/Olympus"), ("peak_end", "25:00"), ("max_estimate_slots", -1), ("max_estimate_slots", 1000),
])
def test_a_run_config_override_is_checked_when_the_run_starts(field, value):
    """The launchpad can override the rules per run; a bad override fails the run at
    resource set-up, naming the run config field, before any asset body runs."""
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize([_thresholds], resources={"rules": RulesResource()},
                       run_config={"resources": {"rules": {"config": {field: value}}}})
    cause = raised.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert cause.setting == f"resources.rules.config.{field}"
