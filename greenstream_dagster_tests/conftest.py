"""Shared fixtures: the real embedded S3 and PostgreSQL servers, started once per session."""

from greenstream_dagster_tests.fixtures_postgres import *  # noqa: F401,F403
from greenstream_dagster_tests.fixtures_s3 import *  # noqa: F401,F403
