"""Where a run's steps run (SPEC §10): Dagster's own executors, chosen by GREENSTREAM_EXECUTOR.

in_process stays the default: a day's steps hand frames over in the run's memory,
and a process per step would add an interpreter start and the imports of Dagster
and Polars to each. The others place steps (a day's shards) apart, at most
GREENSTREAM_MAX_CONCURRENT_STEPS at once within a run: processes on this machine,
a container per step (the compose stack), a Kubernetes job per step.

dagster_docker and dagster_k8s are imported only when chosen, so the default
path loads neither (nor the Kubernetes client).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from greenstream_dagster.settings import Settings

# Imported once by the multiprocess executor's fork server, so that each step process is forked
# from it with these loaded: a spawned one imports them anew, seconds a step, which a day's dozens
# of small steps would each pay. Not the definitions: a step forked from a server that had built
# them hung in its first Polars call (Polars is not fork-safe once its thread pool has run).
# Steps take the server's environment, that of the moment the run process started it: one per
# run as deployed; a process that runs several jobs with changed settings must stop it between.
PRELOADED = ["dagster", "polars", "pyarrow", "boto3"]

# What a step needs to load the definitions and reach the same S3 and PostgreSQL as its run.
FORWARDED_PREFIXES = ("GREENSTREAM_", "AWS_", "DAGSTER_POSTGRES_")


def forwarded_env_names(env: Mapping[str, str]) -> list[str]:
    """The variables a step container is given, by name: their values are read where the
    step is launched, so no secret is written into the executor's config."""
    return sorted(name for name in env if name.startswith(FORWARDED_PREFIXES))


def docker_executor_config(settings: Settings, env: Mapping[str, str]) -> dict:
    """The docker executor's config. No network, volumes or registry: the DockerRunLauncher's
    (deploy/dagster.docker.yaml) are merged into every step container by Dagster, and a network
    named twice is attached twice, which Docker refuses."""
    config: dict = {"max_concurrent": settings.max_concurrent_steps, "env_vars": forwarded_env_names(env)}
    image = env.get("DAGSTER_CURRENT_IMAGE", "").strip()
    if image:  # else the image the code location reports, as for the run itself
        config["image"] = image
    return config


def k8s_executor_config(settings: Settings) -> dict:
    """The k8s_job_executor's config. The env config maps and secrets, image and service account
    of step pods come from the K8sRunLauncher and the code location (deploy/helm/values.yaml)."""
    return {"max_concurrent": settings.max_concurrent_steps}


def executor_for(settings: Settings, env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor of every job of the code location."""
    env = os.environ if env is None else env
    if settings.executor == "in_process":
        return dg.in_process_executor
    if settings.executor == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": settings.max_concurrent_steps,
                                                    "start_method": {"forkserver": {"preload_modules": PRELOADED}}})
    if settings.executor == "docker":
        from dagster_docker import docker_executor

        return docker_executor.configured(docker_executor_config(settings, env))
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(settings))
    raise ValueError(f"unknown executor {settings.executor!r}")  # load_settings allows only the above
