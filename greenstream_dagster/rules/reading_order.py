"""The order scored readings are kept in: by meter, then time.

Both stores want it — the lake for long runs and row-group statistics, the
PostgreSQL load to cluster a day partition by meter — so the scored asset sorts
once, and each store only checks the order (one vectorized pass) instead of
sorting 4.8 million wide rows again.
"""

from __future__ import annotations

import polars as pl

READING_ORDER = ("meter_id", "reading_ts")


def in_order(frame: pl.DataFrame, keys: tuple[str, ...] | list[str], *, strictly: bool = False) -> bool:
    """Whether the rows are already sorted ascending by `keys` (nulls count as out of order);
    `strictly`: and no two rows have the same keys."""
    if frame.height < 2:
        return True
    ordered = pl.lit(not strictly)
    for key in reversed(keys):
        now, before = pl.col(key), pl.col(key).shift(1)
        ordered = (now > before) | ((now == before) & ordered)
    return bool(frame.select(ordered.slice(1).fill_null(False).all()).item())


def merge_disjoint(first: pl.DataFrame, second: pl.DataFrame, key: str) -> pl.DataFrame:
    """Two frames in order of `key` that share no value of it (the kept meters' readings and the
    redone meters'), as one frame in order of `key`, flagged sorted by it.

    Polars' merge_sorted gathers every column row by row (1.2–1.9 s for a day of readings);
    the same result is the first frame's slices with the second's runs spliced in between,
    which copies each column once (0.3 s for 500 meters redone, 0.8 s for 12,500).
    """
    if first.height == 0 or second.height == 0:
        return pl.concat([first, second]).set_sorted(key)
    at = first[key].search_sorted(second[key], side="left")  # where each row of `second` goes
    pieces, start, taken = [], 0, 0
    for run in at.rle().struct.unnest().iter_rows(named=True):  # rows of `second` going to one place
        pieces += [first.slice(start, run["value"] - start), second.slice(taken, run["len"])]
        start, taken = run["value"], taken + run["len"]
    pieces.append(first.slice(start))
    return pl.concat(pieces, rechunk=True).set_sorted(key)


def sorted_by(frame: pl.DataFrame, keys: tuple[str, ...] | list[str]) -> pl.DataFrame:
    """`frame` sorted by `keys`, without sorting when it already is."""
    return frame if in_order(frame, keys) else frame.sort(list(keys))


def duplicate_keys(frame: pl.DataFrame, keys: tuple[str, ...] | list[str]) -> pl.DataFrame:
    """The keys that occur on more than one row (none when the keys are unique).

    Proving uniqueness is the common case and is made cheap: rows strictly in key
    order (the scored readings) are unique in one vectorized pass; otherwise a
    64-bit hash per key tells a unique frame apart, and only a collision or a real
    duplicate pays for grouping by the keys themselves.
    """
    keys = list(keys)
    if in_order(frame, keys, strictly=True) \
            or frame.select(pl.struct(keys).hash().n_unique()).item() == frame.height:
        return frame.select(keys).clear()
    return frame.group_by(keys).len().filter(pl.col("len") > 1).drop("len").sort(keys)
