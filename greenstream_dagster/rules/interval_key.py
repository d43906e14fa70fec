"""One reading per interval key (meter_id, reading_ts), decided by delivery order (SPEC §2).

Placeable rows are ordered by delivery: object last-modified time, then object
key in byte order, then line number. The last row wins and is the reading.
Rows carrying the winner's record_id are the same reading delivered again;
every other distinct record_id of the key is a revision, kept once (its latest
copy) for the audit table, and the winner is flagged `revised`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from greenstream_dagster.rules.record_id import with_record_id

_KEY = ["meter_id", "reading_ts"]


@dataclass(frozen=True)
class Resolved:
    winners: pl.LazyFrame  # one row per interval key, with `revised` (no record_id: see schemas.py)
    revisions: pl.LazyFrame  # one row per losing distinct record_id of a key, with `superseded_by`


def delivery_rank(placeable: pl.LazyFrame) -> pl.LazyFrame:
    """Add `delivery_rank`: position of each row in delivery order.

    Files are ranked first (a handful of them), so the big sort is on two
    integers instead of a timestamp and a string per row.
    """
    files = (
        placeable.select("source_modified_at", "source_key")
        .unique()
        .sort("source_modified_at", "source_key")
        .with_row_index("file_rank")
    )
    return (
        placeable.join(files, on=["source_modified_at", "source_key"], how="left")
        .sort("file_rank", "source_line")
        .with_row_index("delivery_rank")
        .drop("file_rank")
    )


def resolve_interval_keys(placeable: pl.LazyFrame) -> Resolved:
    """Winners and revisions of placeable rows (with `value_raw`).

    Almost every key is delivered once: those rows win as they are, and only
    the keys delivered more than once pay for the content id (record_id, to
    tell a copy from a revision) and the ordering by delivery.
    """
    counted = placeable.with_columns(pl.len().over(_KEY).alias("_deliveries")).collect()
    single = counted.lazy().filter(pl.col("_deliveries") == 1).drop("_deliveries")
    repeated = with_record_id(counted.filter(pl.col("_deliveries") > 1).drop("_deliveries"))
    ranked = delivery_rank(repeated.lazy())
    # Latest copy of each content, materialized: winners and revisions both read it.
    copies = ranked.unique(subset=[*_KEY, "record_id"], keep="last").collect().lazy()
    winners = copies.sort("delivery_rank").unique(subset=_KEY, keep="last")
    revisions = copies.join(
        winners.select(*_KEY, pl.col("record_id").alias("superseded_by")), on=_KEY, how="inner"
    ).filter(pl.col("record_id") != pl.col("superseded_by"))
    revised_keys = revisions.select(_KEY).unique().with_columns(pl.lit(True).alias("revised"))
    winners = winners.join(revised_keys, on=_KEY, how="left").with_columns(
        pl.col("revised").fill_null(False)
    ).drop("delivery_rank", "record_id")
    return Resolved(
        winners=pl.concat([single.with_columns(pl.lit(False).alias("revised")), winners], how="vertical_relaxed"),
        revisions=revisions,
    )
