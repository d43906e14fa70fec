"""Time one `raw_file_sensor` evaluation over a crowded date folder (SPEC §6, scale of §0).

At full scale a day folder may hold one object per meter: 50,000. The tick must
finish well inside Dagster's 60 s sensor timeout. This script starts an embedded
S3 server in a temporary folder, puts that many tiny objects into today's folder
(concurrently; the objects are a few bytes, the point is the object count), then
times a first evaluation (one run request) and a second one (nothing new).

    .venv/bin/python benchmarks/bench_sensor.py [--objects 50000] [--workers 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from dagster import DagsterInstance, DailyPartitionsDefinition, build_sensor_context, job, op

from greenstream_dagster.defs.landing.sensor import build_raw_file_sensor
from greenstream_dagster.services.embedded_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, EmbeddedS3
from greenstream_dagster.storage.s3 import make_s3_client

BUCKET = "bench-landing"


class _S3:
    """The sensor's resource interface: `client()` and `bucket`."""

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url
        self.bucket = BUCKET

    def client(self, **options):
        return make_s3_client(self.endpoint_url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION, **options)


def _fill(s3: _S3, day: date, objects: int, workers: int) -> float:
    client = s3.client(max_pool_connections=workers)
    folder = f"raw-data/{day.isoformat()}/"

    def put(i: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{folder}meters/SM-{i}.csv", Body=f"m,{i}\n".encode())

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(put, range(objects)), 1):
            if done % 10_000 == 0:
                print(f"  put {done} objects ({time.monotonic() - started:.0f} s)", flush=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()

    today = datetime.now(timezone.utc).date()
    partitions = DailyPartitionsDefinition(start_date=(today - timedelta(30)).isoformat(), end_offset=1)

    @op
    def noop() -> None: ...

    @job(partitions_def=partitions)
    def bench_job() -> None:
        noop()

    sensor = build_raw_file_sensor(bench_job, lookback_days=7, partitions_start=today - timedelta(30))
    with tempfile.TemporaryDirectory(prefix="bench-sensor-") as data_dir:
        server = EmbeddedS3(Path(data_dir))
        try:
            s3 = _S3(server.start())
            s3.client().create_bucket(Bucket=BUCKET)
            print(f"putting {args.objects} objects into raw-data/{today.isoformat()}/ ...", flush=True)
            fill_s = _fill(s3, today, args.objects, args.workers)
            print(f"put {args.objects} objects in {fill_s:.1f} s")
            cursor = None
            for label in ("first evaluation", "second evaluation (nothing new)"):
                with DagsterInstance.ephemeral() as instance:
                    context = build_sensor_context(cursor=cursor, resources={"s3": s3}, instance=instance)
                    started = time.monotonic()
                    result = sensor(context)
                    elapsed = time.monotonic() - started
                cursor = result.cursor
                runs = [(r.partition_key, r.tags["greenstream/landing_objects"]) for r in result.run_requests]
                print(f"{label}: {elapsed:.2f} s, run requests {runs}, cursor {len(cursor)} bytes")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
