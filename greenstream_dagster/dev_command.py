"""`greenstream dev`: the README's main command — the whole platform on one machine.

Starts (or reuses) the embedded S3 and PostgreSQL unless configured, generates
six days of sample meter data ending yesterday and uploads it to the landing
zone, then runs `dagster dev` with the sensor and schedules on. The sensor
picks the files up and the UI shows assets materializing. Ctrl-C stops
everything; a second start reuses the data (the sample is made only once).

Unless GREENSTREAM_PARTITIONS_START is set, the partitions start on the sample's
first day. The 7-day fault window is clipped at the partitions' start (SPEC §3);
starting them earlier would count the days before the sample as days of
silence, and the communication-gap check would flag every meter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.generator.manifest import Manifest
from greenstream_dagster.services.command import ENV_FILE_NAME, write_env_file
from greenstream_dagster.services.dagster_instance import PROJECT_ROOT, dagster_environment
from greenstream_dagster.services.runtime import resolve_services
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.s3 import s3_client
from greenstream_dagster.upload_command import upload_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser("dev", help="run the whole platform locally: services, sample data, Dagster UI",
                                   description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port on 127.0.0.1 (default 3000)")
    parser.add_argument("--meters", type=int, default=500, help="meters in the sample data (default 500)")
    parser.add_argument("--days", type=int, default=6,
                        help="days of sample data, ending yesterday, within the sensor look-back (default 6)")
    parser.add_argument("--no-sample", action="store_true", help="do not generate or upload sample data")
    parser.set_defaults(func=run)


PARTITIONS_START = "GREENSTREAM_PARTITIONS_START"


def sample_data(data_dir: Path, meters: int, days: int, partitions_start, lookback_days: int) -> Path:
    """Generate the sample once (a second start reuses it), inside the sensor's look-back and
    not before `partitions_start` (None: no such limit)."""
    folder = data_dir / "sample"
    if (folder / "manifest.json").exists():
        return folder
    today = datetime.now(timezone.utc).date()
    yesterday = today - timedelta(days=1)
    start = max(yesterday - timedelta(days=days - 1), today - timedelta(days=lookback_days - 1))
    if partitions_start is not None:
        start = max(start, partitions_start)
    count = (yesterday - start).days + 1
    # The fleet (SPEC §3a): a few meters silent for some days, and one that never returns.
    silences = {"silent_meters": 6, "silent_days": 2, "vanished_meters": 1} if count >= 4 else {}
    config = with_preset(GeneratorConfig(out=folder, meters=meters, days=count,
                                         start=start, seed=42, **silences), "default")
    generate(config, overwrite=True)
    return folder


def sample_partitions_start(folder: Path) -> str:
    """Where the partitions start when the user has not chosen: the sample's first day."""
    return Manifest.load(folder).partitions_start


def run(args) -> int:
    settings = load_settings()
    start_chosen = bool(os.environ.get(PARTITIONS_START))
    folder = None
    if not args.no_sample:
        folder = sample_data(settings.data_dir, args.meters, args.days,
                             settings.partitions_start if start_chosen else None, settings.lookback_days)
    with resolve_services(settings) as services:
        exported = {**services.environment()}
        if folder is not None and not start_chosen:
            exported[PARTITIONS_START] = sample_partitions_start(folder)
        exported.update(dagster_environment(services, settings, {**os.environ, **exported}))
        # For `dagster …` commands in another shell: `source <data_dir>/services.env`.
        write_env_file(exported, settings.data_dir / ENV_FILE_NAME)
        env = {**os.environ, **exported}
        origin = {True: "embedded", False: "configured"}
        print(f"S3 {services.s3_endpoint_url} bucket {services.bucket} ({origin['s3' in services.embedded]}); "
              f"PostgreSQL ({origin['database' in services.embedded]}); Dagster home {env['DAGSTER_HOME']}")
        if folder is not None:
            print(f"partitions start {env.get(PARTITIONS_START, settings.partitions_start.isoformat())}"
                  + ("" if start_chosen else " (the sample's first day; set GREENSTREAM_PARTITIONS_START to choose)"))
            marker = folder / ".uploaded"
            if not marker.exists():
                result = upload_folder(s3_client(services), services.bucket, folder / "raw-data")
                marker.touch()
                print(f"sample data: {result.files} files, {result.bytes / 1e6:.1f} MB uploaded to the landing zone")
            else:
                print(f"sample data: {folder} already in the landing zone")
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                   "-h", "127.0.0.1", "-p", str(args.port)]
        print(f"Dagster UI: http://127.0.0.1:{args.port}  (Ctrl-C stops everything)")
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)  # dagster dev shuts its webserver and daemon down
            try:
                return process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                return 1
