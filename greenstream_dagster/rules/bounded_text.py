"""Text taken from the data, made safe to store and to log (SPEC §1 limits).

Keys, header lines, raw lines and reasons come from whoever uploads. Before
any of it reaches a log line, Dagster metadata, S3 metadata or a PostgreSQL
column it is escaped (no control character survives, so a key holding a
newline and a fake log line cannot forge a line of the run log) and cut to a
bound with a visible marker (so a 50 MB header cannot become a 50 MB reason).
"""

from __future__ import annotations

import re

DEFAULT_STORED_CHARS = 4096
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: anything a log
# viewer or terminal may treat as a line break or an escape sequence.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def cut_marker(total: int, unit: str = "characters") -> str:
    return f"…[cut: {total} {unit} in all]"


def bounded(text: str, limit: int = DEFAULT_STORED_CHARS) -> str:
    """`text` unchanged when it has at most `limit` characters, else its first `limit`
    characters and a marker giving the whole length."""
    if len(text) <= limit:
        return text
    return text[:limit] + cut_marker(len(text))


def escaped(text: str) -> str:
    """Every control character as a visible escape (`\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_log(text: str, limit: int = DEFAULT_STORED_CHARS) -> str:
    """Escaped, then bounded: one safe line of at most `limit` characters and the marker.

    Only the start of a huge text is escaped, so a 50 MB input costs no more than the bound."""
    head = escaped(text[: limit + 1])
    if len(head) <= limit and len(text) <= limit:
        return head
    return head[:limit] + cut_marker(len(text))
