"""SPEC §1: reading a landing file; bad files go whole to the dead letter store."""

import gzip

import pytest

from greenstream_dagster.rules.csv_file import DeadLetterFile, read_landing_file
from greenstream_dagster_tests.builders import ARRIVAL, rows

KEY = "raw-data/2024-04-15/a.csv"


def test_header_matched_case_insensitively_after_trimming_in_any_order_with_extra_columns():
    out = rows(" UNIT ,Extra, Value,TimeStamp,meter_ID\nkW,x,1.5,2024-04-15T00:00:00Z,SM-1\n")
    assert out.select("meter_id", "timestamp", "value", "unit").row(0) == (
        "SM-1", "2024-04-15T00:00:00Z", "1.5", "kW",
    )


@pytest.mark.parametrize(
    "header, reason",
    [
        ("meter_id,timestamp,value\n", "'unit' missing"),
        ("meter_id,timestamp,value,unit,Unit\n", "'unit' present 2 times"),
        ("id,ts,v,u\n", "'meter_id' missing"),
    ],
)
def test_wrong_header_is_a_dead_letter_naming_the_column(header, reason):
    with pytest.raises(DeadLetterFile, match=reason):
        rows(header + "SM-1,2024-04-15T00:00:00Z,1,kW\n")


@pytest.mark.parametrize(
    "data, gzipped, reason",
    [
        (b"", False, "empty object"),
        (b"\n\n\r\n", False, "no header row"),
        (b"\n\n  \n", False, "header: column 'meter_id' missing"),  # a line of spaces is not blank
        (b"meter_id,timestamp,value,unit\n\xff\xfe1,2\n", False, "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", False, "not text"),
        (b"this is not gzip", True, "corrupt gzip"),
        (gzip.compress(b"meter_id,timestamp,value,unit\nSM-1,x,1,kW\n")[:-10], True, "corrupt gzip"),
        (gzip.compress(b""), True, "empty file after gzip"),
    ],
)
def test_unreadable_files_are_dead_letters_with_a_reason(data, gzipped, reason):
    with pytest.raises(DeadLetterFile, match=reason):
        read_landing_file(data, KEY, ARRIVAL, gzipped)


def test_gzip_file_reads_like_plain():
    text = b"meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n"
    plain = read_landing_file(text, KEY, ARRIVAL, False)
    zipped = read_landing_file(gzip.compress(text), KEY, ARRIVAL, True)
    assert plain.equals(zipped)


def test_bom_crlf_and_blank_lines_keep_physical_line_numbers():
    text = "\ufeffmeter_id,timestamp,value,unit\r\n\r\nSM-1,2024-04-15T00:00:00Z,1,kW\r\n\r\nSM-2,2024-04-15T00:00:00Z,2,kW\r\n"
    out = rows(text)
    assert out["source_line"].to_list() == [3, 5]
    assert out["unit"].to_list() == ["kW", "kW"]
    assert out["raw_line"].to_list()[0] == "SM-1,2024-04-15T00:00:00Z,1,kW"


def test_header_after_leading_blank_lines_counts_them():
    out = rows("\n\nmeter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n")
    assert out["source_line"].to_list() == [4]


def test_fields_are_trimmed_and_empty_fields_are_missing():
    out = rows("meter_id,timestamp,value,unit\n SM-1 , 2024-04-15T00:00:00Z ,  , kW \n")
    assert out.select("meter_id", "timestamp", "value", "unit").row(0) == (
        "SM-1", "2024-04-15T00:00:00Z", None, "kW",
    )


def test_field_count_differing_from_header_is_flagged():
    out = rows("meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1\nSM-1,2024-04-15T00:00:00Z,1,kW,x\n")
    assert out["field_count_ok"].to_list() == [False, False]


def test_rfc4180_quoting_with_commas_and_newlines_inside_fields():
    text = (
        'meter_id,timestamp,value,unit,note\n'
        '"SM-1","2024-04-15T00:00:00Z","1.5","kW","a, b"\n'
        'SM-2,2024-04-15T00:15:00Z,2,kW,"multi\nline ""quoted"""\n'
        'SM-3,2024-04-15T00:30:00Z,3,kW,plain\n'
    )
    out = rows(text)
    assert out["meter_id"].to_list() == ["SM-1", "SM-2", "SM-3"]
    assert out["source_line"].to_list() == [2, 3, 5]
    assert out["field_count_ok"].all()
    assert out["raw_line"][1] == 'SM-2,2024-04-15T00:15:00Z,2,kW,"multi\nline ""quoted"""'


def test_header_only_file_has_no_rows():
    assert rows("meter_id,timestamp,value,unit\n").height == 0


def test_rows_carry_their_source_object_and_arrival():
    out = rows("meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n", key="raw-data/2024-04-15/x/y.csv")
    assert out["source_key"][0] == "raw-data/2024-04-15/x/y.csv"
    assert out["source_modified_at"][0] == ARRIVAL


def test_a_line_of_spaces_or_tabs_is_a_one_field_row_not_a_blank_line():
    out = rows("meter_id,timestamp,value,unit\n   \n\t\nSM-1,2024-04-15T00:00:00Z,1,kW\n")
    assert out["source_line"].to_list() == [2, 3, 4]
    assert out["field_count_ok"].to_list() == [False, False, True]
