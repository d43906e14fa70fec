"""A day's asset computed shard by shard (SPEC §10): a graph of Dagster steps, one per meter shard.

Each sharded asset is a graph-backed asset of three ops:

    <verb>_shards  →  <verb>[shard_0000_of_0002], <verb>[shard_0001_of_0002], …  →  <verb>_day

The first reads how many shards the upstream day was staged in and maps one step
per shard (Dagster's dynamic mapping); each shard step reads its meters' frames,
applies the rules and stages its own frames; the last sums the shards' summaries
into the day's metadata and check results, then stages the day's layout (so
readers switch to the new shards only once all of them are staged). The UI keeps
one asset and one partition per day; the executor (defs/executor.py) places the
shard steps: one after the other in the run's process, or in processes,
containers or Kubernetes jobs of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from greenstream_dagster.defs.partitions import partition_day
from greenstream_dagster.defs.policies import retry_storage_faults
from greenstream_dagster.defs.resources import RulesResource, S3Resource
from greenstream_dagster.defs.run_outputs import RUN_OUTPUTS
from greenstream_dagster.rules.meter_shards import Shard, day_shards
from greenstream_dagster.storage import staging


@dataclass(frozen=True)
class ShardedAsset:
    """What varies between the sharded assets."""

    name: str
    verb: str  # names its ops: standardize_shards, standardize[…], standardize_day
    upstream: dg.AssetIn  # the asset whose layout gives the shard count (with its partition mapping)
    shard_step: Callable  # (context, shard, s3, rules) -> summary dict (JSON values)
    day_result: Callable  # (summaries) -> (metadata dict, [AssetCheckResult])
    check_specs: list[dg.AssetCheckSpec]
    description: str
    kinds: set[str]
    automation_condition: dg.AutomationCondition | None = None

    @property
    def layout_of(self) -> str:
        """The asset whose day layout (shard count) the shards follow: the upstream one."""
        assert self.upstream.key is not None, "a sharded asset names its upstream asset"
        return self.upstream.key.to_user_string()


def build_sharded_asset(spec: ShardedAsset, one_day: dict, retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    @dg.op(name=f"{spec.verb}_shards", ins={"upstream": dg.In(dg.Nothing)}, out=dg.DynamicOut(list, io_manager_key=RUN_OUTPUTS),
           description=f"Maps one step per meter shard of the day, as {spec.layout_of} was staged.")
    def plan(context, s3: S3Resource):
        day = partition_day(context)
        with retry_storage_faults(context):
            count = staging.layout(s3.client(), s3.bucket, spec.layout_of, day)
        for shard in day_shards(count):
            yield dg.DynamicOutput([shard.index, shard.count], mapping_key=shard.label)

    @dg.op(name=spec.verb, retry_policy=retry_policy, out=dg.Out(dict, io_manager_key=RUN_OUTPUTS),
           description=f"One meter shard of {spec.name}: reads its meters' frames, applies the rules, stages its own.")
    def one_shard(context, shard: list, s3: S3Resource, rules: RulesResource) -> dict:
        return spec.shard_step(context, Shard(*shard), s3, rules)

    check_outs = {check.get_python_identifier(): dg.Out(dg.Nothing) for check in spec.check_specs}

    @dg.op(name=f"{spec.verb}_day", out={"result": dg.Out(dg.Nothing), **check_outs},
           description=f"The day's {spec.name} over all shards: metadata and checks; then its shard layout.")
    def whole_day(context, summaries: list, s3: S3Resource):
        day = partition_day(context)
        summaries = sorted(summaries, key=lambda s: s["shard"][0])
        metadata, checks = spec.day_result(summaries)
        with retry_storage_faults(context):
            staging.write_layout(s3.client(), s3.bucket, spec.name, day, summaries[0]["shard"][1])
        context.add_output_metadata(metadata, output_name="result")
        yield from checks
        yield dg.Output(None, output_name="result")

    @dg.graph_asset(
        name=spec.name, ins={"upstream": spec.upstream}, check_specs=spec.check_specs, group_name="readings",
        kinds=spec.kinds, description=spec.description, automation_condition=spec.automation_condition, **one_day,
    )
    def sharded(upstream):
        results = whole_day(plan(upstream=upstream).map(one_shard).collect())
        names = ["result", *check_outs]
        return dict(zip(names, results, strict=True))

    return sharded


def summed(summaries: list[dict], keys: list[str]) -> dict[str, int]:
    """The day's counts: the shards' counts added up (every count here is per meter or per reading)."""
    return {key: sum(s[key] for s in summaries) for key in keys}


def timing(timings: list[dict], rows: int) -> dict[str, float]:
    """Steps' stopwatch metadata put together: their stage seconds added up (the work, wherever it
    ran), the day's rows per second of that work, and the largest process peak of any of them."""
    seconds: dict[str, float] = {}
    for step in timings:
        for name, value in step.items():
            if name.startswith("seconds_"):
                seconds[name] = round(seconds.get(name, 0.0) + value, 3)
    total = max(seconds.get("seconds_total", 0.0), 1e-9)
    return {**seconds, "rows_per_second": round(rows / total, 1),
            "process_peak_rss_mb": max(step["process_peak_rss_mb"] for step in timings)}


def redone(summaries: list[dict]) -> dict:
    """How much of the day the shards redid: every meter, or only those a change touched."""
    whole = [s["touched_meters"] is None for s in summaries]
    return {"meters_redone": sum(s["meters"] if s["touched_meters"] is None else s["touched_meters"] for s in summaries),
            "redone": "whole day" if all(whole) else "changed meters only" if not any(whole)
            else f"whole in {sum(whole)} of {len(whole)} shards, changed meters only in the others"}
