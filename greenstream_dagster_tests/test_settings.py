"""SPEC §7, §8: configuration from the environment; bad values fail at start naming the setting."""

from datetime import date

import pytest

from greenstream_dagster.settings import ConfigurationError, load_settings


def test_defaults_are_the_specs():
    settings = load_settings({})
    assert settings.s3_endpoint_url is None and settings.database_url is None  # embedded
    assert settings.bucket == "greenstream"
    assert settings.partitions_start == date(2024, 1, 1)
    assert settings.rules.timezone == "UTC"
    assert (settings.lookback_days, settings.retention_days) == (7, 90)
    assert (settings.rules.min_kw, settings.rules.max_kw) == (0.0, 100.0)
    assert settings.rules.max_estimate_slots == 4  # §3b: one hour


@pytest.mark.parametrize("text, slots", [("0", 0), ("8", 8), (" 94 ", 94)])
def test_max_estimate_slots_is_read_and_zero_switches_estimation_off(text, slots):
    assert load_settings({"GREENSTREAM_MAX_ESTIMATE_SLOTS": text}).rules.max_estimate_slots == slots


def test_values_are_read():
    settings = load_settings({
        "GREENSTREAM_S3_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com",
        "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "secret",
        "GREENSTREAM_DATABASE_URL": "postgresql://u:p@db.example:5432/gs",
        "GREENSTREAM_PARTITIONS_START": "2025-01-01", "GREENSTREAM_TIMEZONE": "Europe/Berlin",
        "GREENSTREAM_HEMISPHERE": "south", "GREENSTREAM_BUCKET": "meters-prod",
    })
    assert settings.bucket == "meters-prod" and settings.rules.hemisphere == "south"
    assert settings.rules.timezone == "Europe/Berlin" and settings.schedule_timezone == "Europe/Berlin"
    assert "secret" not in repr(settings) and "u:p" not in repr(settings)


@pytest.mark.parametrize("env, setting", [
    ({"GREENSTREAM_TIMEZONE": "Mars/Olympus"}, "GREENSTREAM_TIMEZONE"),
    ({"GREENSTREAM_PARTITIONS_START": "2024-13-01"}, "GREENSTREAM_PARTITIONS_START"),
    ({"GREENSTREAM_S3_ENDPOINT_URL": "localhost:9000"}, "GREENSTREAM_S3_ENDPOINT_URL"),
    ({"GREENSTREAM_DATABASE_URL": "mysql://x@h/db"}, "GREENSTREAM_DATABASE_URL"),
    ({"GREENSTREAM_BUCKET": "Bad_Bucket"}, "GREENSTREAM_BUCKET"),
    ({"GREENSTREAM_LOOKBACK_DAYS": "seven"}, "GREENSTREAM_LOOKBACK_DAYS"),
    ({"GREENSTREAM_RETENTION_DAYS": "0"}, "GREENSTREAM_RETENTION_DAYS"),
    ({"GREENSTREAM_MIN_KW": "10", "GREENSTREAM_MAX_KW": "5"}, "GREENSTREAM_MIN_KW"),
    ({"GREENSTREAM_HEMISPHERE": "east"}, "GREENSTREAM_HEMISPHERE"),
    ({"GREENSTREAM_S3_ENDPOINT_URL": "http://h:9000", "AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
])
def test_bad_configuration_names_the_setting(env, setting):
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env)
    assert raised.value.setting == setting
    assert str(raised.value).startswith(setting)


def test_database_password_is_never_in_the_error():
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"GREENSTREAM_DATABASE_URL": "postgresql://user:hunter2@:notaport/db"})
    assert "hunter2" not in str(raised.value)
