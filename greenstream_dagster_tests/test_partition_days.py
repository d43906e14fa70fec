"""The partitions are the UTC days from GREENSTREAM_PARTITIONS_START to today (SPEC §6, §7)."""

from datetime import date

import dagster as dg
import pytest

from greenstream_dagster.defs.partitions import day_of_partition
from greenstream_dagster.rules.partition_days import partition_problem, requested_partitions

START = date(2024, 1, 1)
TODAY = date(2024, 4, 20)


@pytest.mark.parametrize("key", ["2024-01-01", "2024-04-20", "2024-02-29"])
def test_a_day_from_the_start_to_today_is_a_partition(key):
    assert partition_problem(key, START, TODAY) is None


@pytest.mark.parametrize("key, words", [
    ("2023-12-31", "before the partitions' start GREENSTREAM_PARTITIONS_START=2024-01-01"),
    ("2024-04-21", "after today (2024-04-20 UTC)"),
    ("2024-02-30", "is not a day YYYY-MM-DD"),
    ("20240415", "is not a day YYYY-MM-DD"),
    ("2024-04-15T00:00", "is not a day YYYY-MM-DD"),
    ("", "is not a day YYYY-MM-DD"),
])
def test_a_key_outside_the_days_is_refused_naming_the_setting(key, words):
    problem = partition_problem(key, START, TODAY)
    assert problem is not None and words in problem
    assert "GREENSTREAM_PARTITIONS_START=2024-01-01" in problem


def test_a_hostile_key_is_cut_short_and_quoted():
    problem = partition_problem("x" * 5000 + "\n", START, TODAY)
    assert len(problem) < 200 and "\n" not in problem


def test_the_requested_partitions_are_read_off_a_materialize_command_line():
    argv = ["dagster", "asset", "materialize", "--select", "raw_readings", "--partition", "2024-01-02"]
    assert requested_partitions(argv) == ["2024-01-02"]
    assert requested_partitions(["dagster", "--partition-range", "2024-01-02...2024-01-05"]) == ["2024-01-02", "2024-01-05"]
    assert requested_partitions(["dagster", "--partition=2024-01-03"]) == ["2024-01-03"]
    assert requested_partitions(["dagster", "dev"]) == []


def test_a_run_of_a_day_before_the_start_fails_in_one_line_without_retries():
    with pytest.raises(dg.Failure) as failure:
        day_of_partition("2023-06-01", START)
    assert failure.value.description.startswith("GREENSTREAM_PARTITIONS_START: partition 2023-06-01 is before")
    assert day_of_partition("2024-03-01", START) == date(2024, 3, 1)


@pytest.mark.parametrize("question", [
    ["--meter", "SM-1", "--timestamp", "2023-06-01T12:00:00Z"],
    ["--source-key", "raw-data/2023-06-01/a.csv", "--line", "2"],
    ["--record-id", "a" * 64, "--date", "2023-06-01"],
])
def test_the_journey_of_a_day_before_the_start_is_one_line_naming_the_setting(question, monkeypatch, capsys):
    from greenstream_dagster.cli import main

    monkeypatch.setenv("GREENSTREAM_PARTITIONS_START", "2024-01-01")
    assert main(["journey", *question]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("greenstream: configuration error: GREENSTREAM_PARTITIONS_START: partition 2023-06-01 "
                               "is before the partitions' start GREENSTREAM_PARTITIONS_START=2024-01-01")


def test_a_run_of_a_day_outside_however_launched_fails_in_its_first_step_in_one_line(monkeypatch, tmp_path):
    """A run whose partition tag names a day the partitions do not have (an API call, a stale
    backfill): its first step refuses it in one line, no stack, and nothing is retried."""
    from greenstream_dagster.definitions import build_definitions
    from greenstream_dagster.settings import load_settings

    monkeypatch.setenv("GREENSTREAM_PARTITIONS_START", "2030-01-01")
    monkeypatch.setenv("GREENSTREAM_DATA_DIR", str(tmp_path))
    job = build_definitions(load_settings()).resolve_job_def("ingest_partition_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, tags={"dagster/partition": "2024-04-16"},
                                        raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["raw_readings.landing_batches"]
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    error = failures[0].event_specific_data.error.to_string()
    assert error == ("GREENSTREAM_PARTITIONS_START: partition 2024-04-16 is before the partitions' start "
                     "GREENSTREAM_PARTITIONS_START=2030-01-01; set GREENSTREAM_PARTITIONS_START to 2024-04-16 "
                     "or earlier to process it")
