"""`raw_file_sensor` against the real embedded S3 (SPEC §6)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, DailyPartitionsDefinition, build_sensor_context, job, op

from greenstream_dagster.defs.landing.sensor import build_raw_file_sensor
from greenstream_dagster.rules.landing_scan import lookback_window
from greenstream_dagster.storage.landing_folders import list_landing_window

TODAY = datetime.now(timezone.utc).date()
START = TODAY - timedelta(30)
LOOKBACK = 7


@op
def _noop() -> None: ...


# end_offset=1: today's files belong to today's partition, which must therefore exist.
@job(partitions_def=DailyPartitionsDefinition(start_date=START.isoformat(), end_offset=1))
def raw_job() -> None:
    _noop()


SENSOR = build_raw_file_sensor(raw_job, lookback_days=LOOKBACK, partitions_start=START)


@dataclass
class _S3:
    """The resource interface the sensor needs: `client()` and `bucket`."""

    s3_client: object
    bucket: str

    def client(self):
        return self.s3_client


@pytest.fixture
def landing(s3_client, bucket):
    """Evaluate the sensor like the daemon: each tick gets only the previous cursor."""

    class Landing:
        cursor: str | None = None

        def put(self, key: str, body: bytes = b"meter_id,timestamp,value,unit\n") -> None:
            s3_client.put_object(Bucket=bucket, Key=key, Body=body)

        def tick(self):
            with DagsterInstance.ephemeral() as instance:
                context = build_sensor_context(
                    cursor=self.cursor, resources={"s3": _S3(s3_client, bucket)}, instance=instance
                )
                result = SENSOR(context)
            self.cursor = result.cursor
            return result

    return Landing()


def day(n: int) -> str:
    return (TODAY - timedelta(n)).isoformat()


def partition_keys(result) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def test_new_files_give_one_run_per_partition_day(landing):
    landing.put(f"raw-data/{day(0)}/a.csv", b"a")
    landing.put(f"raw-data/{day(0)}/site-1/b.csv.gz", b"b")
    landing.put(f"raw-data/{day(2)}/c.csv", b"c")
    result = landing.tick()
    assert partition_keys(result) == [day(2), day(0)]
    request = result.run_requests[1]
    assert request.run_key.startswith(f"raw-{day(0)}-")
    assert request.tags["greenstream/landing_objects"] == "2"
    assert set(json.loads(result.cursor)["days"]) == {day(0), day(2)}


def test_the_same_listing_again_starts_nothing(landing):
    landing.put(f"raw-data/{day(0)}/a.csv", b"a")
    landing.tick()
    again = landing.tick()
    assert partition_keys(again) == []
    assert "1 day(s) already seen" in again.skip_reason.skip_message


def test_late_file_in_an_older_day_runs_that_day_only(landing):
    for n in (0, 1, 5):
        landing.put(f"raw-data/{day(n)}/a.csv", f"a{n}".encode())
    landing.tick()
    landing.put(f"raw-data/{day(5)}/late/0000-first-by-name.csv", b"late")
    assert partition_keys(landing.tick()) == [day(5)]


def test_replaced_content_gets_a_new_run_key_and_identical_bytes_none(landing):
    landing.put(f"raw-data/{day(0)}/a.csv", b"v1")
    first = landing.tick().run_requests[0].run_key
    landing.put(f"raw-data/{day(0)}/a.csv", b"v1")  # re-upload, same ETag
    landing.put(f"raw-data/{day(0)}/copy-of-a.csv", b"v1")  # same ETag, same partition
    assert partition_keys(landing.tick()) == []
    landing.put(f"raw-data/{day(0)}/a.csv", b"v2")
    replaced = landing.tick()
    assert partition_keys(replaced) == [day(0)] and replaced.run_requests[0].run_key != first


def test_keys_outside_the_pattern_are_reported_and_never_run(landing, capfd):
    landing.put(f"raw-data/{day(0)}/notes.txt")
    landing.put("raw-data/stray.csv")
    landing.put("raw-data/incoming/x.csv")
    landing.put(f"raw-data/{(TODAY + timedelta(2)).isoformat()}/future.csv")
    landing.put(f"raw-data/{day(LOOKBACK)}/too-old.csv")  # just outside the look-back: not even listed
    result = landing.tick()
    assert partition_keys(result) == []
    assert "4 key(s) ignored" in result.skip_reason.skip_message
    log = capfd.readouterr().err
    # Counts and the first few examples only: stray keys cannot flood the log.
    assert "4 ignored key(s)" in log and "raw-data/stray.csv" in log and "… 1 more" in log


def test_listing_reports_every_ignored_item_with_its_reason(s3_client, bucket):
    for key in (
        f"raw-data/{day(0)}/ok.csv",
        f"raw-data/{day(0)}/notes.txt",
        "raw-data/stray.csv",
        "raw-data/incoming/x.csv",
        "raw-data/2099-02-30/x.csv",
        f"raw-data/{(TODAY + timedelta(1)).isoformat()}/future.csv",
        f"raw-data/{day(LOOKBACK)}/too-old.csv",
    ):
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"x")
    listing = list_landing_window(s3_client, bucket, lookback_window(TODAY, LOOKBACK, START))
    assert {d.isoformat(): [o.key for o in objs] for d, objs in listing.days.items()} == {
        day(0): [f"raw-data/{day(0)}/ok.csv"]
    }
    reasons = {item.key: item.reason for item in listing.ignored}
    assert set(reasons) == {
        f"raw-data/{day(0)}/notes.txt",
        "raw-data/stray.csv",
        "raw-data/incoming/",
        "raw-data/2099-02-30/",
        f"raw-data/{(TODAY + timedelta(1)).isoformat()}/",
    }
    assert "extension" in reasons[f"raw-data/{day(0)}/notes.txt"]
    assert "not a calendar date" in reasons["raw-data/2099-02-30/"]
    assert "after the evaluation day" in reasons[f"raw-data/{(TODAY + timedelta(1)).isoformat()}/"]


def test_a_restarted_sensor_resumes_from_the_cursor_alone(landing):
    landing.put(f"raw-data/{day(0)}/a.csv", b"a")
    landing.tick()
    stored = str(landing.cursor)  # all the daemon keeps across a restart
    landing.put(f"raw-data/{day(3)}/b.csv", b"b")
    landing.cursor = stored
    assert partition_keys(landing.tick()) == [day(3)]


def test_a_day_without_a_partition_yet_waits_instead_of_failing_the_tick(s3_client, bucket):
    @job(name="until_yesterday", partitions_def=DailyPartitionsDefinition(start_date=START.isoformat()))
    def until_yesterday() -> None:
        _noop()

    sensor = build_raw_file_sensor(until_yesterday, lookback_days=LOOKBACK, partitions_start=START)
    for n in (0, 1):
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(n)}/a.csv", Body=b"a")
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(resources={"s3": _S3(s3_client, bucket)}, instance=instance))
    assert partition_keys(result) == [day(1)]
    assert day(0) not in json.loads(result.cursor)["days"]  # run once its partition exists


def test_a_day_with_a_queued_ingest_run_gets_no_second_run(s3_client, bucket):
    """At most one queued run per day, however fast files arrive: the queued run lists the
    folder when it starts. A run that has started may have listed already, so it does not count."""
    import uuid

    from dagster import AssetKey, DagsterRunStatus
    from dagster._core.storage.dagster_run import DagsterRun

    def tick(instance, cursor):
        context = build_sensor_context(cursor=cursor, resources={"s3": _S3(s3_client, bucket)}, instance=instance)
        return SENSOR(context)

    with DagsterInstance.ephemeral() as instance:
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(0)}/a.csv", Body=b"a")
        first = tick(instance, None)
        assert partition_keys(first) == [day(0)]
        run = DagsterRun(job_name="ingest_partition_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.NOT_STARTED,
                         tags={"dagster/partition": day(0)}, asset_selection=frozenset({AssetKey("raw_readings")}))
        instance.add_run(run)  # created, not started: QUEUED runs count alike
        lake_only = DagsterRun(job_name="lake_rollup_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.NOT_STARTED,
                               tags={"dagster/partition": day(1)}, asset_selection=frozenset({AssetKey("lake_readings")}))
        instance.add_run(lake_only)

        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(0)}/b.csv", Body=b"b")
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(1)}/c.csv", Body=b"c")
        second = tick(instance, first.cursor)
        # day 0 is covered by its queued ingest run; day 1's queued run does not read the landing zone.
        assert partition_keys(second) == [day(1)]

        instance.delete_run(run.run_id)
        instance.add_run(run.with_status(DagsterRunStatus.STARTED))
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(0)}/d.csv", Body=b"d")
        third = tick(instance, second.cursor)
        assert partition_keys(third) == [day(0)]

        # A queued run of the ingest job as the sensor launches it: no asset selection recorded.
        instance.add_run(DagsterRun(job_name="ingest_partition_job", run_id=str(uuid.uuid4()),
                                    status=DagsterRunStatus.NOT_STARTED, tags={"dagster/partition": day(2)}))
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(2)}/e.csv", Body=b"e")
        assert partition_keys(tick(instance, third.cursor)) == []


def test_a_day_that_just_ran_waits_for_the_spacing_and_its_change_is_not_lost(s3_client, bucket):
    """Files landing all day: a day whose last ingest run is younger than the spacing gets no
    new run yet; the change stays unseen in the cursor, and the next tick after the spacing runs it."""
    import time
    import uuid

    from dagster import AssetKey, DagsterRunStatus
    from dagster._core.storage.dagster_run import DagsterRun

    def tick(sensor, instance, cursor):
        context = build_sensor_context(cursor=cursor, resources={"s3": _S3(s3_client, bucket)}, instance=instance)
        return sensor(context)

    spaced = build_raw_file_sensor(raw_job, lookback_days=LOOKBACK, partitions_start=START, day_run_spacing_seconds=600)
    with DagsterInstance.ephemeral() as instance:
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(0)}/a.csv", Body=b"a")
        first = tick(spaced, instance, None)
        assert partition_keys(first) == [day(0)]  # no run of the day yet: at once
        # As the sensor's own runs are recorded: the ingest job, no asset selection of its own.
        instance.add_run(DagsterRun(job_name="ingest_partition_job", run_id=str(uuid.uuid4()),
                                    status=DagsterRunStatus.SUCCESS, tags={"dagster/partition": day(0)}))
        instance.add_run(DagsterRun(job_name="lake_rollup_job", run_id=str(uuid.uuid4()),  # reads no landing
                                    status=DagsterRunStatus.SUCCESS, tags={"dagster/partition": day(1)},
                                    asset_selection=frozenset({AssetKey("lake_readings")})))

        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(0)}/b.csv", Body=b"b")
        s3_client.put_object(Bucket=bucket, Key=f"raw-data/{day(1)}/c.csv", Body=b"c")
        second = tick(spaced, instance, first.cursor)
        assert partition_keys(second) == [day(1)]  # day 0 ran a moment ago: held
        assert json.loads(second.cursor)["days"][day(0)] == json.loads(first.cursor)["days"][day(0)]
        assert partition_keys(tick(spaced, instance, second.cursor)) == []  # still held, still not forgotten

        time.sleep(1.5)
        soon = build_raw_file_sensor(raw_job, lookback_days=LOOKBACK, partitions_start=START, day_run_spacing_seconds=1)
        assert partition_keys(tick(soon, instance, second.cursor)) == [day(0)]  # spacing over: the held change runs


def _finished_run(instance, job_name: str, day_key: str, seconds: float, status, asset_selection=None) -> None:
    """A run as the run storage records it: created, started, and ended `seconds` later."""
    import time
    import uuid

    from dagster import DagsterRunStatus
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.storage.dagster_run import DagsterRun

    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=job_name, run_id=run_id, status=status,
                                tags={"dagster/partition": day_key}, asset_selection=asset_selection))
    end = time.time()
    ended = DagsterEventType.RUN_SUCCESS if status is DagsterRunStatus.SUCCESS else DagsterEventType.RUN_FAILURE
    for event_type, at in ((DagsterEventType.RUN_START, end - seconds), (ended, end)):
        instance.report_dagster_event(DagsterEvent(event_type_value=event_type.value, job_name=job_name),
                                      run_id, timestamp=at)


def test_a_filling_day_of_a_fleet_with_long_full_days_waits_twice_such_a_run_from_its_first_run():
    """The day's last run took 1 s (the day is still small), but the fleet's last full day took
    40 s: the day is held about 80 s, not 6 s. Runs that read no landing files, or failed, do
    not count as the fleet's."""
    from dagster import AssetKey, DagsterRunStatus

    from greenstream_dagster.defs.landing.sensor import longest_recent_ingest_run, recently_run_days

    with DagsterInstance.ephemeral() as instance:
        _finished_run(instance, "ingest_partition_job", day(0), 1.0, DagsterRunStatus.SUCCESS)
        assert longest_recent_ingest_run(instance) == pytest.approx(1.0)
        assert 0 < recently_run_days(instance, 600)[day(0)] <= 6  # six times its own second

        _finished_run(instance, "lake_rollup_job", day(2), 300.0, DagsterRunStatus.SUCCESS,
                      asset_selection=frozenset({AssetKey("lake_readings")}))
        _finished_run(instance, "ingest_partition_job", day(3), 500.0, DagsterRunStatus.FAILURE)
        assert longest_recent_ingest_run(instance) == pytest.approx(1.0)

        _finished_run(instance, "ingest_partition_job", day(1), 40.0, DagsterRunStatus.SUCCESS)
        assert longest_recent_ingest_run(instance) == pytest.approx(40.0)
        assert 75 < recently_run_days(instance, 600)[day(0)] <= 80
        assert recently_run_days(instance, 60)[day(0)] <= 60  # never beyond the cap
