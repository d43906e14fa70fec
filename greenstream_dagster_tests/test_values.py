"""SPEC §2: value text, unit allow-list, value_kw rounding (half to even) and the physical range."""

import pytest

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster_tests.builders import one_row


def reading(value, unit, config=RulesConfig()):
    readings, rejected = one_row(f"SM-1,2024-04-15T00:00:00Z,{value},{unit}", config=config)
    assert rejected.height == 0
    return readings.row(0, named=True)


@pytest.mark.parametrize(
    "value, unit, kw",
    [
        ("3250", "W", 3.25),
        ("3.25", "kW", 3.25),
        ("0.004", "MW", 4.0),
        ("1e3", "W", 1.0),
        ("1E+2", "kW", 100.0),
        (".5", "kW", 0.5),
        ("5.", "kW", 5.0),
        ("+7", "kW", 7.0),
        ("-0.5", "kW", -0.5),
        ("-0", "kW", 0.0),
        ("25e-1", "kW", 2.5),
    ],
)
def test_units_convert_to_kw(value, unit, kw):
    assert reading(value, unit)["value_kw"] == kw


@pytest.mark.parametrize(
    "value, unit, kw",
    [
        ("0.05", "W", 0.0),  # 0.00005 → tie → even 0.0000
        ("0.15", "W", 0.0002),  # 0.00015 → tie → even 0.0002
        ("0.25", "W", 0.0002),  # 0.00025 → tie → even 0.0002 (a float would give 0.0003)
        ("0.35", "W", 0.0004),
        ("1.23456", "kW", 1.2346),
        ("1.23454", "kW", 1.2345),
        ("2.00005", "kW", 2.0),
        ("2.00015", "kW", 2.0002),
        ("-2.00015", "kW", -2.0002),
        ("0.0000251", "MW", 0.0251),
        ("123456.789", "W", 123.4568),
    ],
)
def test_rounding_to_four_places_half_to_even(value, unit, kw):
    assert reading(value, unit)["value_kw"] == kw


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "\"3,250\"", "abc", "1e", "e3", ".", "0x10", "1_000", "--1", "1.2.3"])
def test_invalid_value(value):
    row = reading(value, "kW")
    assert row["validation_errors"] == ["INVALID_VALUE"]
    assert row["value_kw"] is None
    assert row["out_of_range"] is False


@pytest.mark.parametrize("unit", ["kWh", "Volts", "kw", "KW", "w", "mW", "mw", "Wh"])
def test_unit_not_allowed(unit):
    row = reading("1", unit)
    assert row["validation_errors"] == ["UNIT_NOT_ALLOWED"]
    assert row["value_kw"] is None


def test_missing_value_or_unit_is_not_a_validation_error():
    for value, unit in [("", "kW"), ("1", ""), ("", "")]:
        row = reading(value, unit)
        assert row["validation_errors"] == []
        assert row["value_kw"] is None
        assert row["out_of_range"] is False
        assert row["value_raw"] == (value or None) and row["unit_raw"] == (unit or None)


@pytest.mark.parametrize(
    "value, unit, out",
    [("0", "kW", False), ("100", "kW", False), ("100000", "W", False), ("100.00004", "kW", False),
     ("100.0001", "kW", True), ("-0.0001", "kW", True), ("-0.00004", "kW", False), ("0.2", "MW", True)],
)
def test_physical_range_on_rounded_value(value, unit, out):
    assert reading(value, unit)["out_of_range"] is out


def test_range_is_configurable():
    config = RulesConfig(min_kw=1.0, max_kw=2.0)
    assert reading("0.5", "kW", config)["out_of_range"] is True
    assert reading("1.5", "kW", config)["out_of_range"] is False


def test_raw_text_is_trimmed():
    readings, _ = one_row("SM-1,2024-04-15T00:00:00Z,  3250 ,  W  ")
    assert readings.select("value_raw", "unit_raw").row(0) == ("3250", "W")


@pytest.mark.parametrize(
    "value, unit, kw",
    [
        ("1e-99999999999999999999", "kW", 0.0),  # the exponent is applied, not dropped
        ("-1e-99999", "MW", 0.0),
        ("0e99999999999999999999", "kW", 0.0),  # zero times anything is zero
        ("1e305", "W", 1e302),  # large but finite: a value, out of range
        ("5e-5", "kW", 0.0),  # 0.00005: a tie, to even
        ("15e-5", "kW", 0.0002),
    ],
)
def test_exponents_are_applied_exactly(value, unit, kw):
    assert reading(value, unit)["value_kw"] == kw


@pytest.mark.parametrize(
    "value, unit",
    [("1e99999999999999999999", "kW"), ("1e400", "W"), ("-1e400", "kW"), ("1e308", "MW"), ("1e309", "kW")],
)
def test_a_product_that_is_not_a_finite_double_is_an_invalid_value(value, unit):
    row = reading(value, unit)
    assert row["validation_errors"] == ["INVALID_VALUE"]
    assert row["value_kw"] is None
    assert row["out_of_range"] is False
