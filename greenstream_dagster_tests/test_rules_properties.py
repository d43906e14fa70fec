"""Property tests of the rules: independent oracles and invariance under row order."""

import math
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.rules.csv_file import read_landing_file
from greenstream_dagster.rules.standardize import standardize
from greenstream_dagster.rules.timestamps import with_parsed_timestamp
from greenstream_dagster.rules.values import UNIT_EXPONENTS, with_value_kw
from greenstream_dagster_tests.builders import ARRIVAL, DAY, HEADER

decimal_text = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{'.' + frac if frac is not None else ''}{'e' + str(exp) if exp is not None else ''}",
    st.sampled_from(["", "+", "-"]),
    st.integers(0, 10**9).map(str),
    st.one_of(st.none(), st.text("0123456789", min_size=0, max_size=9)),
    st.one_of(st.none(), st.integers(-6, 6)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(decimal_text, st.sampled_from(list(UNIT_EXPONENTS))), min_size=1, max_size=20))
def test_value_kw_matches_decimal_half_even_rounding(pairs):
    frame = pl.DataFrame({"i": range(len(pairs)), "v": [v for v, _ in pairs], "u": [u for _, u in pairs]})
    got = with_value_kw(frame.lazy(), "v", "u").collect().sort("i")["value_kw"].to_list()
    for (value, unit), kw in zip(pairs, got):
        exact = (Decimal(value) * Decimal(10) ** UNIT_EXPONENTS[unit]).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
        assert kw == float(exact), (value, unit)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 12, 31)),
    st.sampled_from(["T", " "]),
    st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=9)),
    st.one_of(st.none(), st.just("Z"), st.tuples(st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59))),
)
def test_timestamp_parse_matches_python(moment, separator, fraction, offset):
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + ("." + fraction if fraction else "")
    expected = moment.replace(microsecond=0, tzinfo=timezone.utc)
    if isinstance(offset, tuple):
        sign, hours, minutes = offset
        text += f"{sign}{hours:02d}:{minutes:02d}"
        delta = timedelta(hours=hours, minutes=minutes)
        expected = expected - delta if sign == "+" else expected + delta
    elif offset == "Z":
        text += "Z"
    parsed = with_parsed_timestamp(pl.LazyFrame({"t": [text]}), "t", "ts").collect()["ts"].item()
    assert parsed == expected


line = st.tuples(
    st.sampled_from(["SM-1", "SM-2", "SM-3", "sm-4", ""]),
    st.sampled_from(["2024-04-15T00:00:00Z", "2024-04-15 00:00:00", "2024-04-15T00:15:00Z", "2024-04-14T00:00:00Z", "bad"]),
    st.sampled_from(["1", "2", "3.5", "", "abc", "250"]),
    st.sampled_from(["kW", "W", "kWh", ""]),
)
files = st.lists(st.lists(line, min_size=1, max_size=12), min_size=1, max_size=4)


def csv_text(lines):
    return HEADER + "".join(",".join(fields) + "\n" for fields in lines)


def read_all(file_lines):
    return pl.concat([
        read_landing_file(csv_text(lines).encode(), f"raw-data/2024-04-15/f{i}.csv", ARRIVAL + timedelta(minutes=i % 2), False)
        for i, lines in enumerate(file_lines)
    ])


@settings(max_examples=60, deadline=None)
@given(files, st.randoms(use_true_random=False))
def test_row_order_changes_nothing_and_reruns_are_identical(file_lines, rng):
    rows = read_all(file_lines)
    first = standardize(rows, DAY, RulesConfig())
    again = standardize(rows, DAY, RulesConfig())
    order = list(range(rows.height))
    rng.shuffle(order)
    shuffled = standardize(rows[order], DAY, RulesConfig())
    key = ["meter_id", "reading_ts"]
    for result in (again, shuffled):
        assert result.readings.sort(key).equals(first.readings.sort(key))
        assert result.rejected.equals(first.rejected)
        assert result.revisions.equals(first.revisions)
    # Every data row is accounted for: quarantined, or placeable behind exactly one winner.
    assert first.rejected.height + rows.height - first.rejected.height >= first.readings.height


@settings(max_examples=60, deadline=None)
@given(st.lists(line, min_size=1, max_size=15))
def test_plain_and_quoted_readers_agree(lines):
    plain = read_landing_file(csv_text(lines).encode(), "k.csv", ARRIVAL, False)
    quoted_text = HEADER.rstrip("\n") + ",note\n" + "".join(",".join(f) + ',"x"\n' for f in lines)
    quoted = read_landing_file(quoted_text.encode(), "k.csv", ARRIVAL, False)
    columns = ["source_line", "meter_id", "timestamp", "value", "unit", "field_count_ok"]
    assert plain.select(columns).equals(quoted.select(columns))


def exact_kw(value: str, unit: str) -> float | None:
    """SPEC §2 oracle in exact integers for any exponent: None when the product is not a finite double."""
    mantissa, _, exponent = value.lower().partition("e")
    sign = -1 if mantissa.startswith("-") else 1
    whole, _, fraction = mantissa.lstrip("+-").partition(".")
    digits = int((whole + fraction) or "0")
    power = int(exponent or "0") - len(fraction) + UNIT_EXPONENTS[unit]
    if digits == 0:
        return 0.0
    if power + len(str(digits)) > 309:  # at least 10^309: beyond the largest double
        return None
    if power + len(str(digits)) < -10:  # below 10^-10: rounds to 0 at 4 places
        return 0.0
    with localcontext(prec=800):
        exact = (Decimal(sign * digits).scaleb(power)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    kw = float(exact)
    return None if math.isinf(kw) else kw


huge_exponent_text = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{'.' + frac if frac is not None else ''}e{exp}",
    st.sampled_from(["", "+", "-"]),
    st.integers(0, 10**6).map(str),
    st.one_of(st.none(), st.text("0123456789", min_size=0, max_size=6)),
    st.one_of(st.integers(-(10**30), 10**30), st.integers(-420, 420), st.integers(300, 320)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(huge_exponent_text, st.sampled_from(list(UNIT_EXPONENTS))), min_size=1, max_size=20))
def test_value_kw_applies_any_exponent_exactly_and_rejects_non_finite_products(pairs):
    frame = pl.DataFrame({"i": range(len(pairs)), "v": [v for v, _ in pairs], "u": [u for _, u in pairs]})
    got = with_value_kw(frame.lazy(), "v", "u").collect().sort("i")
    for (value, unit), kw, overflow in zip(pairs, got["value_kw"], got["value_overflow"]):
        expected = exact_kw(value, unit)
        assert kw == expected, (value, unit)
        assert overflow is (expected is None), (value, unit)
