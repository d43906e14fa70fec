"""Shared fixtures: the real embedded S3 and PostgreSQL servers, started once per session."""

from greenstream_dagster_tests.fixtures_postgres import *  # noqa: F401,F403
from greenstream_dagster_tests.fixtures_s3 import *  # noqa: F401,F403


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def runs_of_a_day_unspaced(monkeypatch):
    """Tests run a day again right after a run of it; the production spacing of the sensor's
    runs (GREENSTREAM_DAY_RUN_SPACING_SECONDS) would hold those back. Its own tests set it."""
    monkeypatch.setenv("GREENSTREAM_DAY_RUN_SPACING_SECONDS", "0")
