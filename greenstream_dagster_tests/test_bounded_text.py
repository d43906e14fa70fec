"""SPEC §1: text from the data is escaped and bounded before it is stored or logged."""

import pytest

from greenstream_dagster.rules.bounded_text import bounded, escaped, for_log


def test_short_text_is_kept_as_is():
    assert bounded("header was 'id,ts'", 100) == "header was 'id,ts'"
    assert for_log("raw-data/2024-04-15/a.csv") == "raw-data/2024-04-15/a.csv"


def test_long_text_is_cut_with_a_visible_marker_giving_the_whole_length():
    text = "x" * 50_000
    out = bounded(text, 100)
    assert out == "x" * 100 + "…[cut: 50000 characters in all]"


@pytest.mark.parametrize(
    "char, shown",
    [("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\x1b", "\\x1b"), ("\x00", "\\x00"), ("\x85", "\\x85"),
     ("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\x7f", "\\x7f")],
)
def test_every_control_or_line_separator_character_becomes_a_visible_escape(char, shown):
    assert escaped(f"a{char}b") == f"a{shown}b"


def test_a_key_with_a_newline_cannot_forge_a_log_line():
    key = "raw-data/2024-04-15/x.csv\n2024-04-15 00:00:00 +0000 - dagster - INFO - all files loaded"
    line = for_log(key)
    assert "\n" not in line and "\r" not in line
    assert line.splitlines() == [line]
    assert "\\n2024-04-15 00:00:00" in line


def test_a_huge_text_for_the_log_is_escaped_only_up_to_the_bound():
    text = "\n" * 10_000_000
    line = for_log(text, 50)
    assert line == "\\n" * 25 + "…[cut: 10000000 characters in all]"
