"""Where the shard steps hand their small results to the next step: JSON in the bucket (SPEC §10).

A sharded asset's steps pass each other only a shard's number and a shard's
summary (counts, a check's verdict, timings): a few hundred bytes. Dagster's
default keeps op outputs on the local disk of the process that made them, which
the multiprocess executor shares but a docker container or a Kubernetes job per
step does not; the bucket every step reaches anyway does. JSON, not pickles:
readable with any S3 tool, and never code. The frames themselves go through
staging (storage/staging.py), not through here.
"""

from __future__ import annotations

import json

import dagster as dg

from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.storage.staging import STAGING_PREFIX

RUN_OUTPUTS = "run_outputs"  # the resource key of the IO manager
PREFIX = f"{STAGING_PREFIX}run-outputs/"


def output_key(context: dg.OutputContext) -> str:
    """Dagster's own identifier of the output: run, step, output name and, of a dynamic output
    (a shard), its mapping key."""
    return PREFIX + "/".join(context.get_identifier()) + ".json"


class RunOutputsIOManager(dg.ConfigurableIOManager):
    """Op outputs of plain JSON values (numbers, text, lists, dicts) as objects in the bucket."""

    s3: S3Resource

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        key = output_key(context)
        self.s3.client().put_object(Bucket=self.s3.bucket, Key=key, Body=json.dumps(obj).encode())

    def load_input(self, context: dg.InputContext):
        key = output_key(context.upstream_output)
        return json.loads(self.s3.client().get_object(Bucket=self.s3.bucket, Key=key)["Body"].read())
