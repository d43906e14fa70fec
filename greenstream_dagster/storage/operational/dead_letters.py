"""The dead letter store (SPEC §1, §6): inputs the platform gave up on, kept for a replay.

Two kinds: a landing `file` that cannot be read as CSV (its key and ETag, and
where its copy was kept), and a `partition` whose step failed after its
retries (asset_key names the step). A partition failing again counts an attempt
on its open dead letter rather than adding a row; the same file read again with the
same outcome (an identical re-run) changes nothing (SPEC §5), a new reason counts an
attempt. Dead letters live in the day
partitions of their partition date and leave with them at retention.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime

from psycopg.rows import class_row

from greenstream_dagster.storage.operational.partitions import ensure_day_partitions
from greenstream_dagster.storage.operational.store import OperationalStore

KINDS = ("file", "partition")


@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: int
    partition_date: date
    kind: str
    source_key: str | None
    etag: str | None
    dead_letter_key: str | None
    asset_key: str | None
    reason: str
    attempts: int
    run_id: str | None
    recorded_at: datetime
    replayed_at: datetime | None
    replay_run_id: str | None


_COLUMNS = ", ".join(f.name for f in fields(DeadLetter))


def record_dead_letter_file(
    database_url: str,
    partition_date: date,
    source_key: str,
    etag: str | None,
    reason: str,
    dead_letter_key: str | None = None,
    *,
    run_id: str | None = None,
) -> DeadLetter:
    """Record a landing file that cannot be read as CSV (SPEC §1)."""
    return _record(database_url, partition_date, "file", reason, run_id,
                   source_key=source_key, etag=etag, dead_letter_key=dead_letter_key)


def record_dead_letter_partition(
    database_url: str, partition_date: date, asset_key: str, reason: str, *, run_id: str | None = None
) -> DeadLetter:
    """Record a partition whose `asset_key` step failed after its retries (SPEC §6)."""
    return _record(database_url, partition_date, "partition", reason, run_id, asset_key=asset_key)


def _record(database_url: str, partition_date: date, kind: str, reason: str, run_id: str | None, **what) -> DeadLetter:
    row = {"source_key": None, "etag": None, "dead_letter_key": None, "asset_key": None, **what}
    with OperationalStore(database_url).connect(autocommit=True) as conn:
        ensure_day_partitions(conn, partition_date, ("dead_letter_files",))
        with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
            recorded = cur.execute(
                f"""INSERT INTO dead_letter_files (partition_date, kind, source_key, etag,
                        dead_letter_key, asset_key, reason, run_id)
                    VALUES (%(day)s, %(kind)s, %(source_key)s, %(etag)s,
                        %(dead_letter_key)s, %(asset_key)s, %(reason)s, %(run_id)s)
                    ON CONFLICT (partition_date, kind, source_key, etag, asset_key)
                        WHERE replayed_at IS NULL
                    DO UPDATE SET reason = excluded.reason, run_id = excluded.run_id,
                        dead_letter_key = excluded.dead_letter_key,
                        attempts = dead_letter_files.attempts + 1, recorded_at = now()
                    WHERE excluded.kind = 'partition'
                       OR (dead_letter_files.reason, dead_letter_files.dead_letter_key)
                          IS DISTINCT FROM (excluded.reason, excluded.dead_letter_key)
                    RETURNING {_COLUMNS}""",
                {"day": partition_date, "kind": kind, "reason": reason, "run_id": run_id, **row},
            ).fetchone()
            if recorded is not None:
                return recorded
            return cur.execute(  # the same file judged the same way again: the row stays as it was
                f"""SELECT {_COLUMNS} FROM dead_letter_files
                    WHERE partition_date = %(day)s AND kind = %(kind)s AND replayed_at IS NULL
                      AND source_key IS NOT DISTINCT FROM %(source_key)s AND etag IS NOT DISTINCT FROM %(etag)s
                      AND asset_key IS NOT DISTINCT FROM %(asset_key)s""",
                {"day": partition_date, "kind": kind, **row},
            ).fetchone()


def list_open_dead_letters(
    database_url: str, partition_date: date | None = None, kind: str | None = None
) -> list[DeadLetter]:
    """Dead letters not yet replayed, oldest day first (optionally of one day or one kind)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"dead_letter_files.kind: expected one of {KINDS}, got {kind!r}")
    with OperationalStore(database_url).connect() as conn, conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        return cur.execute(
            f"""SELECT {_COLUMNS} FROM dead_letter_files
                WHERE replayed_at IS NULL
                  AND (%(day)s::date IS NULL OR partition_date = %(day)s)
                  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
                ORDER BY partition_date, recorded_at, dead_letter_id""",
            {"day": partition_date, "kind": kind},
        ).fetchall()


def mark_replayed(
    database_url: str, partition_date: date, dead_letter_ids: list[int], replay_run_id: str | None = None
) -> int:
    """Mark dead letters of a day as replayed; return how many were still open."""
    with OperationalStore(database_url).connect() as conn:
        return conn.execute(
            """UPDATE dead_letter_files SET replayed_at = now(), replay_run_id = %s
               WHERE partition_date = %s AND dead_letter_id = ANY(%s) AND replayed_at IS NULL""",
            (replay_run_id, partition_date, dead_letter_ids),
        ).rowcount
