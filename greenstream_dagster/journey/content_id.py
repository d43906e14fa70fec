"""A reading's content id spelled out (SPEC §2): sha256 of `meter_id|YYYY-MM-DDTHH:MM:SSZ|value_text`.

The platform hashes whole partitions in Polars (`rules.record_id`); a journey
needs the text itself, to show it, and the id of a handful of raw rows.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone


def record_id_text(meter_id: str, reading_ts: datetime, value_raw: str | None) -> str:
    return f"{meter_id}|{reading_ts.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}|{value_raw or ''}"


def content_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
