"""SPEC §1 limits as settings: documented defaults, positive whole numbers, a bad value names the setting."""

import pytest

from greenstream_dagster.rules.reading_limits import MIB, ReadingLimits
from greenstream_dagster.settings import ConfigurationError, load_settings


def test_defaults_are_the_documented_ones():
    limits = load_settings({}).reading_limits
    assert limits == ReadingLimits(max_object_bytes=1024 * MIB, max_line_bytes=MIB, max_stored_chars=4096,
                                   read_budget_bytes=512 * MIB)


def test_limits_are_read_from_the_environment():
    limits = load_settings({"GREENSTREAM_MAX_OBJECT_BYTES": "2048", "GREENSTREAM_MAX_LINE_BYTES": " 64 ",
                            "GREENSTREAM_MAX_STORED_CHARS": "100", "GREENSTREAM_READ_BUDGET_BYTES": "4096"}).reading_limits
    assert limits == ReadingLimits(2048, 64, 100, 4096)


@pytest.mark.parametrize("name", ["GREENSTREAM_MAX_OBJECT_BYTES", "GREENSTREAM_MAX_LINE_BYTES",
                                  "GREENSTREAM_MAX_STORED_CHARS", "GREENSTREAM_READ_BUDGET_BYTES"])
@pytest.mark.parametrize("value", ["0", "-5", "1.5", "1e9", "lots", "nan"])
def test_a_limit_that_is_not_a_positive_whole_number_fails_naming_the_setting(name, value):
    with pytest.raises(ConfigurationError, match=f"^{name}: ") as error:
        load_settings({name: value})
    assert error.value.setting == name


def test_the_rules_refuse_a_limit_below_one():
    with pytest.raises(ValueError, match="max_line_bytes"):
        ReadingLimits(max_line_bytes=0)
