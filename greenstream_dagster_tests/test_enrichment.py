"""SPEC §2 enrichment: tariff period and season in the configured local time zone."""

from datetime import time

import pytest

from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster_tests.builders import one_row


def enriched(ts, config=RulesConfig()):
    readings, _ = one_row(f"SM-1,{ts},1,kW", day=__import__("datetime").date.fromisoformat(ts[:10]), config=config)
    return readings.select("tariff_period", "season").row(0)


@pytest.mark.parametrize(
    "ts, period",
    [
        ("2024-04-15T16:59:59Z", "OFF_PEAK"),
        ("2024-04-15T17:00:00Z", "PEAK"),
        ("2024-04-15T20:59:59Z", "PEAK"),
        ("2024-04-15T21:00:00Z", "OFF_PEAK"),
        ("2024-04-15T00:00:00Z", "OFF_PEAK"),
    ],
)
def test_peak_window_edges(ts, period):
    assert enriched(ts)[0] == period


def test_peak_window_is_configurable():
    config = RulesConfig(peak_start=time(7, 30), peak_end=time(9, 0))
    assert enriched("2024-04-15T07:30:00Z", config)[0] == "PEAK"
    assert enriched("2024-04-15T07:29:59Z", config)[0] == "OFF_PEAK"
    assert enriched("2024-04-15T18:00:00Z", config)[0] == "OFF_PEAK"


def test_peak_in_a_non_utc_time_zone_uses_local_time():
    config = RulesConfig(timezone="Europe/Berlin")  # UTC+2 in April
    assert enriched("2024-04-15T15:00:00Z", config)[0] == "PEAK"  # 17:00 local
    assert enriched("2024-04-15T19:00:00Z", config)[0] == "OFF_PEAK"  # 21:00 local
    assert enriched("2024-01-15T16:00:00Z", RulesConfig(timezone="Europe/Berlin"))[0] == "PEAK"  # UTC+1


@pytest.mark.parametrize(
    "month, north, south",
    [(12, "WINTER", "SUMMER"), (1, "WINTER", "SUMMER"), (2, "WINTER", "SUMMER"),
     (3, "SPRING", "AUTUMN"), (5, "SPRING", "AUTUMN"), (6, "SUMMER", "WINTER"),
     (8, "SUMMER", "WINTER"), (9, "AUTUMN", "SPRING"), (11, "AUTUMN", "SPRING")],
)
def test_seasons_in_both_hemispheres(month, north, south):
    ts = f"2024-{month:02d}-15T12:00:00Z"
    assert enriched(ts)[1] == north
    assert enriched(ts, RulesConfig(hemisphere="south"))[1] == south


def test_season_uses_the_local_month():
    # 2024-02-29T23:30Z is already March 1st in Berlin.
    assert enriched("2024-02-29T23:30:00Z")[1] == "WINTER"
    assert enriched("2024-02-29T23:30:00Z", RulesConfig(timezone="Europe/Berlin"))[1] == "SPRING"
    assert enriched("2024-05-31T23:30:00Z", RulesConfig(timezone="Australia/Sydney", hemisphere="south"))[1] == "WINTER"
