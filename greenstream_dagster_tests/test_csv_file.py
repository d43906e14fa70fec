"""SPEC §1: reading a landing file; bad files go whole to the dead letter store."""

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.csv_file import DeadLetterFile, read_landing_file
from greenstream_dagster.rules.reading_limits import ReadingLimits
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
        (gzip.compress(b"meter_id,timestamp,value,unit\nSM-1,x,1,kW\n", mtime=0)[:-10], True, "corrupt gzip"),
        (gzip.compress(b"", mtime=0), True, "empty file after gzip"),
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


LIMITS = ReadingLimits(max_object_bytes=64 * 1024, max_line_bytes=200, max_stored_chars=40)


def read(text, limits=LIMITS, **kwargs):
    data = text.encode() if isinstance(text, str) else text
    return read_landing_file(data, KEY, ARRIVAL, False, limits, **kwargs)


def test_a_stray_opening_quote_is_one_malformed_row_and_the_rows_after_it_are_read():
    good = "".join(f"SM-{i},2024-04-15T00:00:00Z,1,kW\n" for i in range(40))  # well over the line limit
    out = read('meter_id,timestamp,value,unit\nSM-9,"2024-04-15T00:00:00Z,1,kW\n' + good)
    assert out["source_line"].to_list() == list(range(2, 43))
    assert out["field_count_ok"].to_list() == [False] + [True] * 40


def test_a_quote_that_never_closes_before_the_end_is_one_malformed_row():
    out = read('meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\nSM-2,"x,1,kW\nSM-3,y,1,kW\n')
    assert out["field_count_ok"].to_list() == [True, False, True]
    assert out["source_line"].to_list() == [2, 3, 4]


def test_a_line_over_the_line_limit_is_malformed_and_stored_cut_with_a_marker():
    long_line = "SM-1,2024-04-15T00:00:00Z,1,kW," + "x" * 500
    out = read(f"meter_id,timestamp,value,unit\n{long_line}\nSM-2,2024-04-15T00:00:00Z,1,kW\n")
    assert out["field_count_ok"].to_list() == [False, True]
    assert out["raw_line"][0] == long_line[:40] + f"…[cut: {len(long_line)} characters in all]"


def test_a_quoted_record_over_the_line_limit_is_malformed_on_its_first_line_only():
    note = "\n".join(["word"] * 60)  # 300 bytes inside one quoted field
    out = read(f'meter_id,timestamp,value,unit,note\nSM-1,2024-04-15T00:00:00Z,1,kW,"{note}"\n')
    assert out["source_line"][0] == 2 and not out["field_count_ok"][0]
    # the lines after it are read as rows again: "word" lines and the closing quote line
    assert out["source_line"].to_list() == list(range(2, 62))


def test_a_header_over_the_line_limit_is_a_dead_letter_with_a_bounded_reason():
    with pytest.raises(DeadLetterFile, match="not a readable header") as error:
        read("m" * 5000 + ",timestamp,value,unit\n")
    assert len(str(error.value)) < 400


def test_a_lone_cr_is_an_ordinary_character_not_a_line_ending():
    out = read('meter_id,timestamp,value,unit,note\nSM-1,2024-04-15T00:00:00Z,1,kW,"q"\n'
               'SM-2,2024-04-15T00:00:00Z,1,kW,a\rSM-3,2024-04-15T00:00:00Z,1,kW,b\nSM-4,2024-04-15T00:00:00Z,1,kW,c\n')
    assert out["source_line"].to_list() == [2, 3, 4]
    assert out["field_count_ok"].to_list() == [True, False, True]


def test_a_cr_only_file_is_one_long_line_so_its_header_is_wrong():
    text = '"meter_id",timestamp,value,unit\r' + "SM-1,2024-04-15T00:00:00Z,1,kW\r" * 20
    with pytest.raises(DeadLetterFile, match="'unit' missing"):
        read(text, ReadingLimits())


def test_a_cr_at_the_end_of_an_unterminated_last_line_is_a_character_of_it():
    out = read("meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n\r")
    assert out["source_line"].to_list() == [2, 3]
    assert out["raw_line"][1] == "\r"


@pytest.mark.parametrize("bomb, reason", [
    (b"\x00" * 300_000, "not text: contains NUL"),
    (b"a" * 300_000, "larger than 65536 bytes after decompression"),
    (b"\n" * 300_000, "larger than 65536 bytes after decompression"),
])
def test_a_gzip_bomb_is_a_dead_letter_after_at_most_the_limit(bomb, reason):
    with pytest.raises(DeadLetterFile, match=reason):
        read_landing_file(gzip.compress(bomb), KEY, ARRIVAL, True, LIMITS)


def test_gzip_members_one_after_another_and_zero_padding_are_read():
    one, two = b"meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n", b"SM-2,2024-04-15T00:00:00Z,2,kW\n"
    out = read_landing_file(gzip.compress(one) + gzip.compress(two) + b"\x00" * 16, KEY, ARRIVAL, True, LIMITS)
    assert out["meter_id"].to_list() == ["SM-1", "SM-2"]


def test_a_flood_of_newlines_is_only_counted():
    out = read("meter_id,timestamp,value,unit\n" + "\n" * 50_000 + "SM-1,2024-04-15T00:00:00Z,1,kW\n",
               ReadingLimits(max_line_bytes=200))
    assert out["source_line"].to_list() == [50_002]


def test_quoted_records_carry_the_lines_they_span():
    out = read('meter_id,timestamp,value,unit,note\nSM-1,2024-04-15T00:00:00Z,1,kW,"a\n\nb"\nSM-2,2024-04-15T00:00:00Z,1,kW,x\n')
    assert out.select("source_line", "line_count").rows() == [(2, 3), (5, 1)]


line_text = st.text(alphabet='ab," \r\t\n', max_size=30)


file_piece = st.one_of(line_text, st.just("\n" * 70), st.just("\r\n" * 40), st.just('"\n"'),
                       st.text(alphabet='x"\n', min_size=100, max_size=400))


@settings(max_examples=200, deadline=None)
@given(st.lists(file_piece, max_size=25), st.integers(40, 300))
def test_rows_do_not_depend_on_how_the_file_is_cut_into_segments(lines, line_limit):
    """Segments only bound memory: the smallest segments give the same rows as one segment,
    also around runs of blank lines (where segments are cut short) and lines over the limit."""
    limits = ReadingLimits(max_line_bytes=line_limit, max_stored_chars=100)
    text = "meter_id,timestamp,value,unit\n" + "\n".join(lines) + "\n"
    try:
        whole = read(text, limits)
    except DeadLetterFile:
        with pytest.raises(DeadLetterFile):
            read(text, limits, segment_bytes=1)
        return
    assert read(text, limits, segment_bytes=1).equals(whole)


def test_blank_lines_inside_a_quoted_field_are_continuation_lines():
    out = read('meter_id,timestamp,value,unit,note\nSM-1,2024-04-15T00:00:00Z,1,kW,"a' + "\n" * 100 + 'b"\nSM-2,x,1,kW,y\n',
               ReadingLimits())
    assert out.select("source_line", "line_count", "field_count_ok").rows() == [(2, 101, True), (103, 1, True)]
