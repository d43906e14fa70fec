"""Re-standardize and re-score only the meters a change touched (work proportional to what arrived).

Standardization and scoring are local to a meter (SPEC §2–4): a reading's
winner, revisions, enrichment, statistics, faults, score and grade depend on
the rows of its own meter (and, for faults, on its own history), and a
quarantined row depends on itself alone. So when a day is re-processed after
some landing objects changed (added, replaced, removed), the result of a cold
run equals the previous result with these parts redone:

- the **touched meters**: every meter with a row in a changed object, in its
  new or its old version (the old version's meters are read from the previous
  readings and revisions, whose rows carry their source object);
- the **rows to redo**: every row of a touched meter, from any object, plus
  every row of a changed object (its quarantined rows have no meter).

Everything else is kept as it was. The previous result is only used when it
describes exactly the files it was built from and was built under the same
rules (`Basis`); otherwise the day is redone whole. The equality with a cold
run is tested on real runs (test_late_file_rerun).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.reading_order import READING_ORDER, in_order, merge_disjoint
from greenstream_dagster.rules.schemas import REJECTED_COLUMNS, REVISION_COLUMNS
from greenstream_dagster.rules.score import Scored
from greenstream_dagster.rules.standardize import Standardized

# Bump when standardize() or score_partition() would give other results for the same input:
# results of older versions are then redone whole.
RULES_VERSION = 3  # 2: readings carry no record_id; 3: scores come with the day's estimates (§3b)
FILE_IDENTITY = ("key", "etag", "size", "last_modified")


def rules_fingerprint(config: RulesConfig) -> str:
    return f"rules {RULES_VERSION}; {config!r}"


@dataclass(frozen=True)
class Basis:
    """What a standardized day was built from: its landing files and its rules."""

    files: pl.DataFrame  # FILE_IDENTITY of the readable files (the raw `files` frame, dead letters removed)
    rules: str

    def frame(self, version: str) -> pl.DataFrame:
        return self.files.select(FILE_IDENTITY).with_columns(
            pl.lit(self.rules).alias("rules"), pl.lit(version).alias("version"))

    @staticmethod
    def of(raw_files: pl.DataFrame | None, config: RulesConfig) -> "Basis":
        files = (raw_files.filter(pl.col("dead_letter_reason").is_null()).select(FILE_IDENTITY)
                 if raw_files is not None else pl.DataFrame(schema={"key": pl.Utf8, "etag": pl.Utf8,
                                                                    "size": pl.Int64,
                                                                    "last_modified": pl.Datetime("us", "UTC")}))
        return Basis(files=files, rules=rules_fingerprint(config))


def changed_keys(previous_basis: pl.DataFrame | None, basis: Basis) -> set[str] | None:
    """Keys of the objects added, replaced or removed since `previous_basis` (a `Basis.frame`);
    None when the previous result is no base to build on (none, an empty day, other rules)."""
    if previous_basis is None or previous_basis.height == 0 or previous_basis["rules"][0] != basis.rules:
        return None
    before = set(previous_basis.select(FILE_IDENTITY).iter_rows())
    now = set(basis.files.iter_rows())
    return {identity[0] for identity in before ^ now}


def _in_changed(changed: set[str]) -> pl.Expr:
    """Rows whose source object is one of the `changed` keys."""
    return pl.col("source_key").is_in(pl.Series(sorted(changed), dtype=pl.Utf8).implode())


def touched_meters(rows: pl.DataFrame, previous: Standardized, changed: set[str]) -> pl.Series:
    """Meters with a row in a changed object, now or in its previous version."""
    in_changed = _in_changed(changed)
    meters = pl.concat([
        rows.filter(in_changed & pl.col("meter_id").is_not_null()).select("meter_id"),
        previous.readings.filter(in_changed).select("meter_id"),
        previous.revisions.filter(in_changed).select("meter_id"),
    ])
    return meters["meter_id"].unique().sort()


def rows_to_redo(rows: pl.DataFrame, touched: pl.Series, changed: set[str]) -> pl.DataFrame:
    return rows.filter(pl.col("meter_id").is_in(touched.implode()) | _in_changed(changed))


def merge_standardized(previous: Standardized, redone: Standardized, touched: pl.Series,
                       redo_rows: pl.DataFrame, changed: set[str]) -> Standardized:
    """The previous day with the touched meters and the redone rows replaced by `redone`."""
    keep = ~pl.col("meter_id").is_in(touched.implode())
    rejected = (
        previous.rejected.filter(~_in_changed(changed))
        .join(redo_rows.select("source_key", "source_line"), on=["source_key", "source_line"], how="anti")
    )
    return Standardized(
        readings=pl.concat([previous.readings.filter(keep), redone.readings]),
        rejected=pl.concat([rejected, redone.rejected]).sort("source_key", "source_line").cast(pl.Schema(REJECTED_COLUMNS)),
        revisions=pl.concat([previous.revisions.filter(keep), redone.revisions])
        .sort("meter_id", "reading_ts", "record_id").cast(pl.Schema(REVISION_COLUMNS)),
        meter_stats=pl.concat([previous.meter_stats.filter(keep), redone.meter_stats]).sort("meter_id"),
    )


def merge_scored(kept: Scored, redone: Scored) -> Scored:
    """The kept scores and the redone meters' together, in reading order (estimates by meter and slot).

    Both are in reading order and hold different meters, so splicing the redone
    meters' rows in by meter keeps each meter's rows whole and in time order
    (`merge_disjoint`), where sorting the day again gathers every column of 4.8
    million rows. The result is flagged sorted by meter like a cold run's sorted
    scores, because Polars chooses how to add up a group's floats by that flag
    (meter_daily must equal a cold run's).
    """
    if kept.readings.height and redone.readings.height:
        readings = merge_disjoint(kept.readings, redone.readings, "meter_id")
        if not in_order(readings, READING_ORDER):  # never expected: sort, as a cold run does
            readings = readings.sort(list(READING_ORDER))
    else:
        readings = pl.concat([kept.readings, redone.readings]).sort(list(READING_ORDER))
    meters = pl.concat([kept.meters, redone.meters]).sort("meter_id")
    estimates = pl.concat([kept.estimates, redone.estimates]).sort("meter_id", "slot_ts")
    return Scored(readings=readings, meters=meters, estimates=estimates)
