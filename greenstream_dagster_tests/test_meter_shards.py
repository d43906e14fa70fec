"""Meter shards (SPEC §10, rules/meter_shards.py): a stable split of the day by meter whose
results, put together, are the whole day's.

The property: random fleets over two days (overlapping deliveries, revisions, bad rows,
ids that are no meter's, a day crossing the end of summer time in Berlin), split into 1, 2,
7 or 16 shards; standardizing and scoring each shard alone (its own history) and putting
the shards together gives every frame the whole day gives. Only the rows' order differs.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.landing_key import LandingObject
from greenstream_dagster.rules.meter_daily import meter_daily
from greenstream_dagster.rules.meter_shards import (
    DEFAULT_METERS_PER_SHARD,
    meter_shard,
    parse_batches,
    placeable_meters,
    route,
    shard_count,
)
from greenstream_dagster.rules.score import score_partition
from greenstream_dagster.rules.standardize import standardize
from greenstream_dagster_tests.builders import HEADER, rows

# 2024-10-27: clocks in Berlin go back from 03:00 to 02:00, so local tariff periods and the
# day's local hours are not those of an ordinary day.
DAYS = (date(2024, 10, 26), date(2024, 10, 27))
CONFIG = RulesConfig(partitions_start=DAYS[0], timezone="Europe/Berlin", stuck_min_readings=3, spike_min_readings=4)


def splitmix64_finalizer(x: int) -> int:
    """SplitMix64's output function as published (Steele, Lea, Flood, OOPSLA 2014)."""
    mask = (1 << 64) - 1
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def test_the_reference_mix_is_splitmix64():
    # SplitMix64 seeded with 0: its first output is the finalizer of the golden-ratio increment.
    assert splitmix64_finalizer(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF


def test_a_meter_shard_is_its_number_mixed_modulo_the_count():
    ids = ["SM-0", "SM-1", "SM-48291", "SM-000000000007", "SM-999999999999"]
    for shards in (1, 2, 7, 16, 1000):
        got = pl.DataFrame({"meter_id": ids}).select(meter_shard(shards))["meter_id"].to_list()
        assert got == [splitmix64_finalizer(int(i[3:])) % shards for i in ids]


def test_rows_of_no_meter_go_to_shard_zero():
    ids = [None, "", "sm-1", "SM-", "SM-1234567890123", "SM-12a", " SM-1"]
    got = pl.DataFrame({"meter_id": ids}, schema={"meter_id": pl.Utf8}).select(meter_shard(7))["meter_id"]
    assert got.to_list() == [0] * len(ids)


@pytest.mark.parametrize("step", [1, 10, 16, 1000])
def test_meters_spread_evenly_even_when_numbered_in_steps(step):
    frame = pl.DataFrame({"meter_id": [f"SM-{n * step}" for n in range(64_000)]})
    sizes = frame.select(meter_shard(16))["meter_id"].value_counts()["count"]
    assert sizes.len() == 16 and sizes.min() > 0.95 * 4000 and sizes.max() < 1.05 * 4000


def test_the_shard_count_follows_the_fleet_or_is_set_outright():
    assert shard_count(0) == 1 and shard_count(500) == 1
    assert shard_count(DEFAULT_METERS_PER_SHARD) == 1 and shard_count(DEFAULT_METERS_PER_SHARD + 1) == 2
    assert shard_count(1_000_000) == 20
    assert shard_count(1_000_000, meters_per_shard=250_000) == 4
    assert shard_count(500, configured=7) == 7
    with pytest.raises(ValueError):
        shard_count(10, meters_per_shard=0)
    with pytest.raises(ValueError):
        meter_shard(0)


def test_a_day_counts_the_meters_its_rows_name_not_the_ids_of_no_meter():
    """A 50,000-meter day with a few malformed ids is still one shard of 50,000 meters."""
    ids = pl.Series(["SM-1", "SM-1", "SM-2", None, "", "SM-", "sm-3", "SM-12x", "GARBAGE", "SM-0000002"])
    assert placeable_meters(ids).len() == 3  # SM-1, SM-2 and SM-0000002 (another id: ids are text)
    fleet = pl.Series([f"SM-{k}" for k in range(DEFAULT_METERS_PER_SHARD)] + ["SM-x", None, "bad"])
    assert shard_count(placeable_meters(fleet).len()) == 1


def numbered(ids: list[str | None]) -> pl.DataFrame:
    """Rows of the given ids, each carrying its position, so order and loss can be seen."""
    return pl.DataFrame({"meter_id": ids, "row": range(len(ids))}, schema={"meter_id": pl.Utf8, "row": pl.Int64})


def test_routing_puts_every_row_in_exactly_its_meters_shard_in_order():
    ids = [f"SM-{(n * 7919) % 5000}" for n in range(200_000)]  # meters interleaved, each many times
    frame = numbered(ids)
    parts = route(frame, 7)
    assert sorted(parts) == list(range(7))
    together = pl.concat(parts.values())
    assert together.height == frame.height and together["row"].n_unique() == frame.height
    for shard, part in parts.items():
        assert part.columns == frame.columns and part.schema == frame.schema
        assert (part.select(meter_shard(7))["meter_id"] == shard).all()
        assert part["row"].is_sorted()  # the order the rows came in


def test_routing_gives_empty_shards_an_empty_frame_of_the_same_columns():
    parts = route(numbered(["SM-1", "SM-1", "SM-1"]), 16)
    assert sorted(parts) == list(range(16))
    assert sum(part.height for part in parts.values()) == 3
    assert all(part.schema == parts[0].schema for part in parts.values())
    assert all(route(numbered([]), 3)[k].height == 0 for k in range(3))


def test_routing_sends_rows_of_no_meter_to_shard_zero():
    ids = [None, "", "sm-1", "SM-", "SM-12a", " SM-1"]
    parts = route(numbered(ids), 5)
    assert parts[0]["row"].to_list() == list(range(len(ids)))
    assert all(parts[k].height == 0 for k in range(1, 5))


def test_one_shard_routes_every_row_to_it_unchanged():
    frame = numbered(["SM-3", None, "SM-1"])
    assert route(frame, 1)[0].equals(frame)


def listed(*sizes: int) -> list[LandingObject]:
    modified = datetime(2024, 4, 15, tzinfo=timezone.utc)
    return [LandingObject(f"raw-data/2024-04-15/f{n:02d}.csv", size, "", modified) for n, size in enumerate(sizes)]


def test_parse_batches_fill_up_to_the_byte_limit_in_listing_order():
    objects = listed(40, 50, 10, 90, 30, 70)
    batches = parse_batches(objects, 100)
    assert [[o.size for o in batch] for batch in batches] == [[40, 50, 10], [90], [30, 70]]
    assert [o for batch in batches for o in batch] == objects  # each object once, in order


def test_an_object_above_the_limit_is_a_batch_alone():
    assert [[o.size for o in b] for b in parse_batches(listed(10, 500, 10), 100)] == [[10], [500], [10]]
    assert parse_batches([], 100) == []
    with pytest.raises(ValueError):
        parse_batches(listed(1), 0)


METERS = ["SM-1", "SM-2", "SM-3", "SM-17", "SM-100", "SM-4096", "SM-77777", "bad-id", ""]
line = st.tuples(
    st.sampled_from(METERS),
    st.integers(0, 95),  # slot of the day
    st.sampled_from(["1.5", "2", "0.25", "3.25", "40", "abc", "", "1e3", "250"]),
    st.sampled_from(["kW", "W", "kWh"]),
)
day_files = st.lists(st.lists(line, max_size=25), min_size=1, max_size=3)


def day_rows(day: date, files: list[list[tuple]]) -> pl.DataFrame:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    frames = []
    for n, lines in enumerate(files):
        body = "".join(f"{m},{start + timedelta(minutes=15 * s):%Y-%m-%dT%H:%M:%SZ},{v},{u}\n" for m, s, v, u in lines)
        modified = start + timedelta(hours=23, minutes=n)
        frames.append(rows(HEADER + body + "SM-5,broken\n", key=f"raw-data/{day}/f{n}.csv", modified=modified))
    return pl.concat(frames)


def day_results(raw: dict[date, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Both days standardized, the second scored over its window, and its meter_daily."""
    first, second = (standardize(raw[d], d, CONFIG) for d in DAYS)
    scored = score_partition(second.readings, DAYS[1], CONFIG, first.meter_stats)
    frames = {f"{DAYS[0]} {f.name}": getattr(first, f.name) for f in fields(first)}
    frames |= {f"{DAYS[1]} {f.name}": getattr(second, f.name) for f in fields(second)}
    frames |= {f"scored {f.name}": getattr(scored, f.name) for f in fields(scored)}
    frames["meter_daily"] = meter_daily(scored.readings, scored.meters, DAYS[1], scored.estimates)
    return frames


def in_order(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one order; float sums compared to 1e-9 (Polars adds a meter's terms in frame order)."""
    floats = [c for c, t in frame.schema.items() if t == pl.Float64]
    return frame.with_columns(pl.col(floats).round(9)).sort(pl.all(), nulls_last=True)


@settings(max_examples=40, deadline=None)
@given(first=day_files, second=day_files, shards=st.sampled_from([1, 2, 7, 16]))
def test_any_shard_count_gives_the_whole_days_results(first, second, shards):
    raw = {DAYS[0]: day_rows(DAYS[0], first), DAYS[1]: day_rows(DAYS[1], second)}
    whole = day_results(raw)
    parts = [day_results({d: frame.filter(meter_shard(shards) == k) for d, frame in raw.items()})
             for k in range(shards)]
    for name, frame in whole.items():
        together = pl.concat([part[name] for part in parts])
        assert in_order(together).equals(in_order(frame)), name
