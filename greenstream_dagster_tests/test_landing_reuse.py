"""Which landing objects a re-read of a day parses again (rules/landing_reuse.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.landing_reuse import limits_fingerprint, plan_reuse, reused_rows
from greenstream_dagster.rules.reading_limits import ReadingLimits

T0 = datetime(2024, 4, 15, 1, tzinfo=timezone.utc)
LIMITS = ReadingLimits()


def obj(key: str, etag: str = "e1", size: int = 10, modified: datetime = T0) -> LandingObject:
    return LandingObject(key=f"raw-data/2024-04-15/{key}", size=size, etag=etag, last_modified=modified)


def files(objects: list[LandingObject], dead: dict[str, str] | None = None, limits=LIMITS) -> pl.DataFrame:
    dead = dead or {}
    return pl.DataFrame(
        [(o.key, o.size, o.etag, o.last_modified, dead.get(o.key), limits_fingerprint(limits)) for o in objects],
        orient="row",
        schema={"key": pl.Utf8, "size": pl.Int64, "etag": pl.Utf8, "last_modified": pl.Datetime("us", "UTC"),
                "dead_letter_reason": pl.Utf8, "read_with": pl.Utf8},
    )


def test_only_new_and_changed_objects_are_read_again():
    a, b, c = obj("a.csv"), obj("b.csv"), obj("c.csv")
    now = [a, obj("b.csv", etag="e2"), obj("c.csv", modified=T0.replace(hour=2)), obj("d.csv")]
    plan = plan_reuse(now, files([a, b, c]), True, LIMITS)
    assert [o.key[-5:] for o in plan.reused] == ["a.csv"]
    assert [o.key[-5:] for o in plan.to_read] == ["b.csv", "c.csv", "d.csv"]  # new ETag, re-delivered, new


def test_dead_letters_other_limits_and_lost_rows_are_read_again():
    a, b = obj("a.csv"), obj("b.csv")
    assert plan_reuse([a, b], files([a, b], dead={a.key: "not text"}), True, LIMITS).to_read == [a]
    raised = ReadingLimits(max_line_bytes=2 * LIMITS.max_line_bytes)
    assert plan_reuse([a, b], files([a, b]), True, raised).to_read == [a, b]
    assert plan_reuse([a, b], files([a, b]), False, LIMITS).to_read == [a, b]
    assert plan_reuse([a, b], None, True, LIMITS).to_read == [a, b]
    assert plan_reuse([a, b], files([a, b]).drop("read_with"), True, LIMITS).to_read == [a, b]  # older staging


def test_reused_rows_are_those_of_the_reused_objects():
    rows = pl.DataFrame({"source_key": ["raw-data/2024-04-15/a.csv"] * 2 + ["raw-data/2024-04-15/b.csv"],
                         "source_line": [2, 3, 2]})
    assert reused_rows(rows, [obj("a.csv")])["source_line"].to_list() == [2, 3]
