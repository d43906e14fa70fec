"""raw_readings: a day's landing files read once, in parse batches that run as steps of their own (SPEC §10).

A graph-backed asset of three ops, so the UI keeps one asset and one partition per day:

    landing_batches  →  parse[batch_0000_of_0003], parse[batch_0001_of_0003], …  →  raw_day

`landing_batches` lists the day's folder, refuses a day whose objects went
missing (unless accepted), decides what the previous read can give again and
cuts the rest into batches; one `parse` step per batch (Dagster's dynamic
mapping, placed by the executor like the shard steps: defs/executor.py) fetches
and parses its files once and routes their rows to the meter shards; `raw_day`
stages the day's shards from them, dead-letters the unreadable files and writes
the files frame last. The steps hand each other JSON through the bucket
(defs/run_outputs.py), the rows go through staging (storage/raw_rows.py).
"""


from datetime import date

import dagster as dg
import polars as pl

from greenstream_dagster.asset_names import RAW
from greenstream_dagster.defs.partitions import partition_day
from greenstream_dagster.defs.policies import one_day, storage_step
from greenstream_dagster.defs.readings.sharded import timing
from greenstream_dagster.defs.resources import OperationalStoreResource, S3Resource
from greenstream_dagster.defs.run_outputs import RUN_OUTPUTS
from greenstream_dagster.rules.bounded_text import bounded, for_log
from greenstream_dagster.rules.landing_reuse import limits_fingerprint, plan_reuse
from greenstream_dagster.rules.meter_shards import day_shards
from greenstream_dagster.rules.removed_objects import ACCEPT_REMOVAL_TAG, removal_message, removed_objects
from greenstream_dagster.settings import Settings, load_settings
from greenstream_dagster.storage import landing, staging
from greenstream_dagster.storage.operational.dead_letters import record_dead_letter_file
from greenstream_dagster.storage.raw_rows import (
    BatchRead,
    ReadPlan,
    Split,
    parse_batch,
    plan_read,
    remove_pieces,
    stage_pieces,
    stage_shards,
)

DEAD_LETTER_SAMPLES = 5


class RawReadingsConfig(dg.Config):
    """Run config of raw_readings (the Launchpad shows it)."""

    accept_removed_objects: bool = False  # re-process a day although objects loaded before are gone


def _accepts_removal(context, config: RawReadingsConfig) -> bool:
    """Accepted by run config, or by the run tag a UI backfill can carry."""
    return config.accept_removed_objects or context.run.tags.get(ACCEPT_REMOVAL_TAG, "").lower() == "true"


def _split(settings: Settings) -> Split:
    return Split(settings.meters_per_shard, settings.shards, settings.parse_batch_bytes)


@dg.op(out={"plan": dg.Out(dict, io_manager_key=RUN_OUTPUTS), "batches": dg.DynamicOut(int, io_manager_key=RUN_OUTPUTS)},
       description="Lists the day's landing files and maps one parse step per batch of those to read.")
def landing_batches(context, config: RawReadingsConfig, s3: S3Resource):
    day = partition_day(context)
    with storage_step(context, s3) as (watch, client, bucket):
        with watch.stage("list"):
            objects = landing.list_date_folder(client, bucket, day)
            previous_files = staging.read_frame(client, bucket, RAW, day, "files")
            removed = removed_objects(previous_files, (o.key for o in objects))
            if removed and not _accepts_removal(context, config):
                raise dg.Failure(removal_message(day.isoformat(), removed), metadata={"removed_objects": len(removed)})
        settings = load_settings()
        with watch.stage("plan"):
            previous = staging.layout(client, bucket, RAW, day)
            kept = _rows_kept(client, bucket, day, previous_files, previous)
            reuse = plan_reuse(objects, previous_files, kept, settings.reading_limits)
            plan = plan_read(client, bucket, day, reuse, removed, _split(settings), previous)
    yield dg.Output({**plan.to_json(), "timing": watch.metadata(0)}, output_name="plan")
    count = len(plan.batches)
    for number in range(count):
        yield dg.DynamicOutput(number, mapping_key=f"batch_{number:04d}_of_{count:04d}", output_name="batches")


@dg.op(out=dg.Out(dict, io_manager_key=RUN_OUTPUTS),
       description="One parse batch: fetches and parses its files once, routes their rows to the meter shards.")
def parse(context, number: int, plan: dict, s3: S3Resource) -> dict:
    day, read_plan = partition_day(context), ReadPlan.from_json(plan)
    settings = load_settings()
    split = _split(settings)
    with storage_step(context, s3) as (watch, client, bucket):
        with watch.stage("parse"):
            read, routed, meters = parse_batch(client, bucket, day, read_plan, number, settings.reading_limits, split)
        staged = None
        with watch.stage("stage"):
            if len(read_plan.batches) == 1:  # a lone batch: its rows are the day's shards already
                staged = stage_shards(client, bucket, day, read_plan, split, [read], routed, meters)
            else:
                stage_pieces(client, bucket, day, read, routed, meters)
    return {**read.to_json(), "staged": staged, "timing": watch.metadata(read.rows)}


@dg.op(out=dg.Out(dg.Nothing),
       description="The day's raw rows: stages its meter shards from the batches, dead-letters unreadable files, "
       "then the files read.")
def raw_day(context, plan: dict, parsed: list, s3: S3Resource, operational: OperationalStoreResource) -> None:
    day, read_plan = partition_day(context), ReadPlan.from_json(plan)
    summaries = sorted(parsed, key=lambda s: s["number"])
    batches = [BatchRead.from_json(s) for s in summaries]
    settings = load_settings()
    limits = settings.reading_limits
    with storage_step(context, s3) as (watch, client, bucket):
        with watch.stage("shards"):
            if summaries[0]["staged"] is not None:
                rows, shards = summaries[0]["staged"]
            else:
                rows, shards = stage_shards(client, bucket, day, read_plan, _split(settings), batches)
                remove_pieces(client, bucket, day)
        files = [*read_plan.reused, *(obj for read in batches for obj in read.files)]
        dead_letters = [item for read in batches for item in read.dead_letters]
        ignored = [item for read in batches for item in read.ignored]
        with watch.stage("dead_letter"):
            for obj, reason in dead_letters:
                dead_key = landing.dead_letter_object(client, bucket, obj.key, reason)
                record_dead_letter_file(operational.url(), day, obj.key, obj.etag, reason, dead_key)
                context.log.warning(f"dead letter {for_log(obj.key, 300)}: {for_log(reason, 500)}")
        for _key, reason in ignored[:DEAD_LETTER_SAMPLES]:
            context.log.warning(f"ignored key {for_log(reason, 500)}")
        with watch.stage("write"):
            # Last: the files name what the rows hold. Cut short before, the next read finds
            # older files and reads again what they do not list.
            staging.write_frame(client, bucket, RAW, day, "files", _file_frame(files, dead_letters, limits))
    to_read = sum(len(batch) for batch in read_plan.batches)
    context.add_output_metadata({
        "rows": rows,
        "shards": shards,
        "parse_batches": sum(1 for batch in read_plan.batches if batch),  # of at most GREENSTREAM_PARSE_BATCH_BYTES
        "files": len(files),
        "files_parsed": to_read,  # new or changed since the day's previous read
        "files_reused": len(read_plan.reused),  # unchanged since the previous read: not fetched nor parsed again
        "dead_lettered_files": len(dead_letters),
        "ignored_keys": len(ignored),
        "removed_objects": len(read_plan.removed),  # accepted: their readings leave the stores, audited
        "csv_bytes": sum(obj.size for obj in files),
        **({"dead_letters": "\n".join(f"{for_log(o.key, 300)}: {for_log(r, 500)}"
                                       for o, r in dead_letters[:DEAD_LETTER_SAMPLES])}
           if dead_letters else {}),
        **timing([plan["timing"], *(s["timing"] for s in summaries), watch.metadata(rows)], rows),
    })


@dg.config_mapping
def _to_raw_config(config: RawReadingsConfig) -> dict:
    """The asset's run config (`ops: {raw_readings: {config: …}}`, as before it was a graph) to its first op."""
    return {"landing_batches": {"config": {"accept_removed_objects": config.accept_removed_objects}}}


def build_raw_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.graph_asset(
        name=RAW, **one_day(partitions), group_name="readings", kinds={"s3", "polars"},
        config=_to_raw_config,
        description="Every CSV row of the partition day's landing files, as text with its source object and line, "
        "routed to its meter's shard. Unreadable files go whole to the dead letter store. Parsed in batches.",
    )
    def raw_readings():
        plan, batches = landing_batches()
        return raw_day(plan, batches.map(lambda number: parse(number, plan)).collect())

    return raw_readings


def _rows_kept(client, bucket: str, day: date, previous_files: pl.DataFrame | None, previous: int) -> bool:
    """Whether the previous read's rows (in `previous` shards) are all staged, so that its unchanged
    objects can be reused."""
    if previous_files is None:
        return False
    return all(staging.frame_exists(client, bucket, RAW, day, staging.shard_frame("rows", shard))
               for shard in day_shards(previous))


def _file_frame(files, dead_letters, limits) -> pl.DataFrame:
    """The landing files read for this day: provenance for the record journey, the lake's size
    ratio, and what the next read of the day may reuse (`read_with`: the limits it was read under)."""
    read_with = limits_fingerprint(limits)
    rows = [(o.key, o.size, o.etag, o.last_modified, None, read_with) for o in files]
    rows += [(o.key, o.size, o.etag, o.last_modified, bounded(reason), read_with) for o, reason in dead_letters]
    return pl.DataFrame(
        rows, orient="row",
        schema={"key": pl.Utf8, "size": pl.Int64, "etag": pl.Utf8,
                "last_modified": pl.Datetime("us", "UTC"), "dead_letter_reason": pl.Utf8, "read_with": pl.Utf8},
    )
