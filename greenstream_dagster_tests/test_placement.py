"""SPEC §2: placeable rows and the quarantine codes, first that applies, in order."""

import pytest

from greenstream_dagster_tests.builders import HEADER, one_row, standardized


@pytest.mark.parametrize(
    "line, reason",
    [
        ("SM-1,2024-04-15T00:00:00Z,1", "MALFORMED_ROW"),
        ("sm-1,not-a-time,1", "MALFORMED_ROW"),  # field count is checked first
        (",2024-04-15T00:00:00Z,1,kW", "MISSING_METER_ID"),
        (",,1,kW", "MISSING_METER_ID"),
        ("sm-1,2024-04-15T00:00:00Z,1,kW", "INVALID_METER_ID"),
        ("SM-,2024-04-15T00:00:00Z,1,kW", "INVALID_METER_ID"),
        ("SM-1234567890123,2024-04-15T00:00:00Z,1,kW", "INVALID_METER_ID"),
        ("XX-1,,1,kW", "INVALID_METER_ID"),
        ("SM-1,,1,kW", "MISSING_TIMESTAMP"),
        ("SM-1,2024-02-30T00:00:00Z,1,kW", "INVALID_TIMESTAMP"),
        ("SM-1,2024-04-15T24:00:00Z,1,kW", "INVALID_TIMESTAMP"),
        ("SM-1,2024-04-14T12:00:00Z,1,kW", "TIMESTAMP_OUTSIDE_PARTITION"),
        ("SM-1,2024-04-15T01:00:00+02:00,1,kW", "TIMESTAMP_OUTSIDE_PARTITION"),
        ("SM-1,2024-04-14T23:00:00-01:30,1,kW", None),
        ("SM-123456789012,2024-04-15T00:00:00Z,1,kW", None),
    ],
)
def test_quarantine_reason(line, reason):
    readings, rejected = one_row(line)
    if reason is None:
        assert readings.height == 1 and rejected.height == 0
    else:
        assert readings.height == 0
        assert rejected["reason"].to_list() == [reason]


def test_quarantined_row_keeps_source_line_and_raw_text():
    result = standardized(HEADER + "SM-1,2024-04-15T00:00:00Z,1,kW\n\n  sm-9 ,2024-04-15T00:00:00Z,1,kW\n")
    assert result.rejected.select("source_key", "source_line", "raw_line", "reason").row(0) == (
        "raw-data/2024-04-15/a.csv", 4, "  sm-9 ,2024-04-15T00:00:00Z,1,kW", "INVALID_METER_ID",
    )
    assert result.rejected["partition_date"][0].isoformat() == "2024-04-15"


def test_invalid_value_and_unit_are_placeable_not_quarantined():
    readings, rejected = one_row("SM-1,2024-04-15T00:00:00Z,abc,kWh")
    assert rejected.height == 0
    assert readings["validation_errors"].to_list() == [["INVALID_VALUE", "UNIT_NOT_ALLOWED"]]
