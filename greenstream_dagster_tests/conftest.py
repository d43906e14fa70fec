"""Shared fixtures: the real embedded S3 and PostgreSQL servers, started once per session."""

import multiprocessing.forkserver

import pytest  # noqa: E402

from greenstream_dagster_tests.fixtures_postgres import *  # noqa: F401,F403
from greenstream_dagster_tests.fixtures_s3 import *  # noqa: F401,F403

# A test that needs one of these fixtures starts (or shares) a real server: marked `services`,
# so `make test-fast` can leave it out. Tests that start servers of their own say so with
# `pytestmark` in their module (`services`, `live` for a whole platform, `browser`).
SERVER_FIXTURES = frozenset({"postgres_server", "s3_server"})


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture(autouse=True)
def runs_of_a_day_unspaced(monkeypatch):
    """Tests run a day again right after a run of it; the production spacing of the sensor's
    runs (GREENSTREAM_DAY_RUN_SPACING_SECONDS) would hold those back. Its own tests set it."""
    monkeypatch.setenv("GREENSTREAM_DAY_RUN_SPACING_SECONDS", "0")


@pytest.fixture(autouse=True)
def fork_server_of_its_own():
    """The multiprocess executor forks its steps from a fork server that lives as long as the process
    that started it, with the environment of that moment (GREENSTREAM_* settings, the bucket). A
    deployment starts one per run process; tests run many jobs in one process, so each test stops
    the one it started, and the next test's steps see the next test's settings. (`_stop` is the
    standard library's own hook for its tests.)"""
    yield
    multiprocessing.forkserver._forkserver._stop()


@pytest.fixture
def point_platform(s3_env, database_url, monkeypatch, tmp_path):
    """Point the platform's settings at this test's bucket and database, with partitions from
    `start` (and any further settings given); the embedded servers' data goes under tmp_path."""

    def configure(start, **settings: str) -> None:
        for name, value in {**s3_env, "GREENSTREAM_DATABASE_URL": database_url,
                            "GREENSTREAM_PARTITIONS_START": start.isoformat(),
                            "GREENSTREAM_DATA_DIR": str(tmp_path / "data"), **settings}.items():
            monkeypatch.setenv(name, value)

    return configure
