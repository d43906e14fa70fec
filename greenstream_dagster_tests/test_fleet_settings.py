"""The fleet's settings (SPEC §3a): defaults, and a bad value fails at start naming the setting."""

import pytest

from greenstream_dagster.settings import ConfigurationError, load_settings


def test_fleet_defaults():
    settings = load_settings({})
    assert (settings.rules.silent_lookback_days, settings.silent_warn_share, settings.freshness_hours) == (30, 0.01, 2.0)


def test_fleet_settings_are_read():
    settings = load_settings({"GREENSTREAM_SILENT_LOOKBACK_DAYS": "14", "GREENSTREAM_SILENT_WARN_SHARE": "0.05",
                              "GREENSTREAM_FRESHNESS_HOURS": "0.5"})
    assert (settings.rules.silent_lookback_days, settings.silent_warn_share, settings.freshness_hours) == (14, 0.05, 0.5)


@pytest.mark.parametrize("name, value", [
    ("GREENSTREAM_SILENT_LOOKBACK_DAYS", "0"), ("GREENSTREAM_SILENT_LOOKBACK_DAYS", "a month"),
    ("GREENSTREAM_SILENT_WARN_SHARE", "-0.1"), ("GREENSTREAM_FRESHNESS_HOURS", "0"),
])
def test_a_bad_fleet_setting_is_named(name, value):
    with pytest.raises(ConfigurationError) as error:
        load_settings({name: value})
    assert error.value.setting == name
