"""SPEC §10: GREENSTREAM_EXECUTOR picks which of Dagster's executors runs every job's steps."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from greenstream_dagster.defs.executor import docker_executor_config, executor_for
from greenstream_dagster.settings import load_settings

EXECUTOR_NAMES = {"in_process": "in_process", "multiprocess": "multiprocess", "docker": "docker", "k8s": "k8s"}


def _settings(executor: str, steps: str = "3"):
    return load_settings({"GREENSTREAM_EXECUTOR": executor, "GREENSTREAM_MAX_CONCURRENT_STEPS": steps})


@pytest.mark.parametrize("executor", sorted(EXECUTOR_NAMES))
def test_every_job_runs_on_the_executor_the_setting_names(executor):
    from greenstream_dagster.definitions import build_definitions

    jobs = build_definitions(_settings(executor)).resolve_all_job_defs()
    assert {job.name for job in jobs} >= {"ingest_partition_job", "lake_rollup_job", "retention_job"}
    for job in jobs:
        assert job.executor_def.name == EXECUTOR_NAMES[executor], job.name
        if executor != "in_process":
            # The executor's own config schema accepts what was configured, and the limit is the setting's.
            resolved = job.executor_def.config_schema.resolve_config({})
            assert resolved.success, resolved.errors
            assert resolved.value["config"]["max_concurrent"] == 3, job.name


def test_the_default_is_in_process_and_imports_neither_docker_nor_kubernetes(tmp_path):
    assert load_settings({}).executor == "in_process"
    assert executor_for(load_settings({})) is dg.in_process_executor
    env = {key: value for key, value in os.environ.items() if not key.startswith("GREENSTREAM_")}
    probe = ("import sys, greenstream_dagster.definitions as d; "
             "print(d.defs.get_job_def('ingest_partition_job').executor_def.name, "
             "sorted(m for m in ('dagster_docker', 'dagster_k8s', 'kubernetes', 'docker') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={**env, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "in_process []"


def test_docker_steps_get_the_settings_by_name_and_the_code_locations_image():
    env = {"GREENSTREAM_BUCKET": "b", "GREENSTREAM_EXECUTOR": "docker", "AWS_SECRET_ACCESS_KEY": "secret",
           "DAGSTER_POSTGRES_URL": "postgresql://x", "DAGSTER_CURRENT_IMAGE": "greenstream-dagster:local", "HOME": "/root"}
    config = docker_executor_config(_settings("docker"), env)
    # Names only: a value (a password among them) is read where the step container is created.
    assert config["env_vars"] == ["AWS_SECRET_ACCESS_KEY", "DAGSTER_POSTGRES_URL", "GREENSTREAM_BUCKET", "GREENSTREAM_EXECUTOR"]
    assert config["image"] == "greenstream-dagster:local" and config["max_concurrent"] == 3
    assert "network" not in config and "networks" not in config  # the run launcher's, see test_deployment_files
    assert "image" not in docker_executor_config(_settings("docker"), {})


# ---------------------------------------------------------------- a real run of each

@dg.op(out=dg.DynamicOut(int))
def shards():
    for shard in range(2):
        yield dg.DynamicOutput(shard, mapping_key=str(shard))


@dg.op
def shard_process(shard: int) -> list:
    """Where the step ran: its process and that process's parent."""
    return [os.getpid(), os.getppid()]


def shards_job(executor: str) -> dg.JobDefinition:
    @dg.job(name=f"shards_on_{executor}", executor_def=executor_for(_settings(executor, "2")))
    def job():
        shards().map(shard_process)

    return job


def shards_in_process():
    return shards_job("in_process")


def shards_multiprocess():
    return shards_job("multiprocess")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("target", [shards_in_process, shards_multiprocess], ids=["in_process", "multiprocess"])
def test_a_run_places_its_shard_steps_where_the_executor_says(target):
    """in_process: every step in the run's process (frames stay in its memory); multiprocess: each
    shard step in a process of its own, two at a time."""
    with dg.instance_for_test() as instance:
        with dg.execute_job(dg.reconstructable(target), instance=instance) as result:
            assert result.success
            steps = list(result.output_for_node("shard_process").values())  # by mapping key
    pids = [pid for pid, _ in steps]
    assert len(pids) == 2
    if target is shards_in_process:
        assert set(pids) == {os.getpid()}
    else:
        assert len(set(pids)) == 2 and os.getpid() not in pids
        # Forked from the executor's fork server (one parent, not the run's process, as a spawned
        # step's would be), which has Dagster and Polars loaded already.
        parents = {parent for _, parent in steps}
        assert len(parents) == 1 and os.getpid() not in parents
