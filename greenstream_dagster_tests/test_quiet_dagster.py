"""Loading the code location and materializing a day print none of Dagster's Beta/Preview/superseded
warnings for the features chosen on purpose (greenstream_dagster/defs/__init__.py), while any
other such warning still shows."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.upload_command import upload_folder

ROOT = Path(__file__).resolve().parents[1]
DAY = datetime.now(timezone.utc).date() - timedelta(days=1)
DAGSTER_WARNINGS = ("BetaWarning", "PreviewWarning", "SupersessionWarning")

SCRIPT = textwrap.dedent("""
    import sys, warnings
    import dagster as dg
    from greenstream_dagster.definitions import defs
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("ingest_partition_job").execute_in_process(
            partition_key=sys.argv[1], instance=instance)
    assert result.success
    warnings.warn("a feature nobody chose", dg.BetaWarning)  # still shown: the filter names features
    print("materialized", flush=True)
""")


def test_loading_and_materializing_prints_no_warning_for_the_chosen_features(
    s3_env, s3_client, database_url, tmp_path
):
    config = GeneratorConfig(out=tmp_path / "sample", meters=10, days=1, start=DAY, seed=2,
                             rules=RulesConfig(partitions_start=DAY))
    generate(config)
    upload_folder(s3_client, s3_env["GREENSTREAM_BUCKET"], config.out / "raw-data")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GREENSTREAM_", "PYTHONWARNINGS"))},
           **s3_env, "GREENSTREAM_DATABASE_URL": database_url, "GREENSTREAM_PARTITIONS_START": DAY.isoformat()}
    done = subprocess.run([sys.executable, "-W", "default", "-c", SCRIPT, DAY.isoformat()], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "materialized" in done.stdout, done.stderr[-3000:]
    shown = [line for line in done.stderr.splitlines() if any(name in line for name in DAGSTER_WARNINGS)]
    assert len(shown) == 1 and "a feature nobody chose" in shown[0], "\n".join(shown)
