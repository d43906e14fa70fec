"""Quality score and grade of every winning reading (SPEC §4).

+40 value and unit both present, +30 no validation error, +20 value_kw present
and in range, +10 the meter is reliable on D. Grades: A 90–100, B 75–89,
C 60–74, F below 60.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from greenstream_dagster.rules.usable import within_range

if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then

POINTS_PRESENT = 40
POINTS_VALID = 30
POINTS_IN_RANGE = 20
POINTS_RELIABLE = 10
GRADE_FLOORS = (("A", 90), ("B", 75), ("C", 60))
LAKE_GRADES = ("A", "B", "C")  # SPEC §5: the lake's readings are those graded A–C


def quality_score() -> pl.Expr:
    present = pl.col("value_raw").is_not_null() & pl.col("unit_raw").is_not_null()
    valid = pl.col("validation_errors").list.len() == 0
    in_range = within_range()
    points = [
        (present, POINTS_PRESENT), (valid, POINTS_VALID),
        (in_range, POINTS_IN_RANGE), (pl.col("meter_reliable"), POINTS_RELIABLE),
    ]
    return pl.sum_horizontal(pl.when(ok).then(p).otherwise(0) for ok, p in points).cast(pl.Int32)


def quality_grade(score: pl.Expr) -> pl.Expr:
    grade: Then | ChainedThen = pl.when(score >= GRADE_FLOORS[0][1]).then(pl.lit(GRADE_FLOORS[0][0]))
    for letter, floor in GRADE_FLOORS[1:]:
        grade = grade.when(score >= floor).then(pl.lit(letter))
    return grade.otherwise(pl.lit("F"))
