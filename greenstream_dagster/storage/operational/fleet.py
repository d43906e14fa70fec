"""The fleet in the operational store (SPEC §3a): presence, the registry `meters`, `silent_meters`.

A day's registry update is one transaction under an advisory lock, because the
registry is shared by every day: two days materializing at once would otherwise
both read a meter's row and the second write would lose the first. Frames move
as Arrow through ADBC (a temporary table, then set-based SQL); rows that did not
change are never written (`IS DISTINCT FROM`), so a re-run of a day changes zero
rows. Dates are bound as literals of `date` objects, never text from input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from greenstream_dagster.rules.meter_registry import (
    PRESENCE_COLUMNS,
    REGISTRY_COLUMNS,
    merge_day,
    registry_from_presence,
    removed_meters,
)
from greenstream_dagster.rules.silent_meters import SILENT_COLUMNS, lookback_first_day
from greenstream_dagster.storage.operational.partitions import ensure_day_partitions
from greenstream_dagster.storage.operational.store import OperationalStore

_REGISTRY_LOCK = "greenstream.meter_registry"
_REGISTRY_VALUES = [c for c in REGISTRY_COLUMNS if c != "meter_id"]


@dataclass(frozen=True)
class RegistryUpdate:
    """What recording one day's presence changed."""

    meters_on_day: int
    new_meters: int  # meters whose first day ever is this day
    presence_changed: int  # presence rows inserted, updated or deleted
    registry_changed: int  # registry rows inserted, updated or deleted
    registry_meters: int  # rows in the registry afterwards

    @property
    def changed(self) -> int:
        return self.presence_changed + self.registry_changed


@dataclass(frozen=True)
class Lookback:
    """What the silent-meter rule reads of the store for day D."""

    last_seen: pl.DataFrame  # meter_id, partition_date (its latest day of D-L..D-1)
    day_meters: pl.DataFrame  # meter_id of the meters present on D
    new_meters: pl.DataFrame  # meter_id of the meters first seen on D
    missing_days: list[date]  # look-back days (from the partitions' start) never recorded
    day_recorded: bool  # whether D's own presence was recorded


def _day(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _fetch(cur, query: str) -> pl.DataFrame:
    cur.execute(query)
    return pl.from_arrow(cur.fetch_arrow_table())


def _execute(cur, query: str) -> int:
    cur.execute(query)
    return max(cur.rowcount, 0)


def _stage(cur, name: str, frame: pl.DataFrame) -> None:
    cur.adbc_ingest(name, frame.to_arrow(), mode="create", temporary=True)


def record_day_presence(database_url: str, day: date, presence: pl.DataFrame) -> RegistryUpdate:
    """Make the day's presence rows equal `presence` and bring the registry up to date."""
    presence = presence.select(list(PRESENCE_COLUMNS)).cast(PRESENCE_COLUMNS)
    store = OperationalStore(database_url)
    with store.connect() as conn:
        ensure_day_partitions(conn, day, ("meter_presence",))
    with store.adbc() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('%s'))" % _REGISTRY_LOCK)
        before = _fetch(cur, f"SELECT meter_id FROM meter_presence WHERE partition_date = {_day(day)}")
        _stage(cur, "fleet_presence_new", presence)
        registry = _fetch(cur, "SELECT m.meter_id, m.first_seen, m.last_seen, m.last_reading_ts, m.days_seen "
                               "FROM meters m JOIN fleet_presence_new p USING (meter_id)")
        merged = merge_day(registry.cast(REGISTRY_COLUMNS), before, presence, day)
        gone = removed_meters(before, presence)

        presence_changed = _execute(cur, (
            f"DELETE FROM meter_presence p WHERE p.partition_date = {_day(day)} AND NOT EXISTS "
            "(SELECT 1 FROM fleet_presence_new n WHERE n.meter_id = p.meter_id)"))
        presence_changed += _execute(cur, (
            "INSERT INTO meter_presence (partition_date, meter_id, last_reading_ts) "
            "SELECT partition_date, meter_id, last_reading_ts FROM fleet_presence_new "
            "ON CONFLICT (partition_date, meter_id) DO UPDATE SET last_reading_ts = EXCLUDED.last_reading_ts "
            "WHERE meter_presence.last_reading_ts IS DISTINCT FROM EXCLUDED.last_reading_ts"))
        if gone.len():
            # Rare (a re-run after landing objects were removed): those meters' rows are
            # recomputed from the presence that remains.
            _stage(cur, "fleet_gone", gone.to_frame())
            remaining = _fetch(cur, "SELECT p.meter_id, p.partition_date, p.last_reading_ts FROM meter_presence p "
                                    "JOIN fleet_gone g USING (meter_id)")
            recomputed = registry_from_presence(remaining.cast(PRESENCE_COLUMNS).lazy()).collect()
            merged = pl.concat([merged, recomputed])
        registry_changed = _upsert_registry(cur, merged)
        if gone.len():
            registry_changed += _execute(cur, (
                "DELETE FROM meters m USING fleet_gone g WHERE m.meter_id = g.meter_id AND NOT EXISTS "
                "(SELECT 1 FROM meter_presence p WHERE p.meter_id = m.meter_id)"))
        _execute(cur, (
            f"INSERT INTO fleet_days (partition_date, meters) VALUES ({_day(day)}, {presence.height}) "
            "ON CONFLICT (partition_date) DO UPDATE SET meters = EXCLUDED.meters, materialized_at = now() "
            "WHERE fleet_days.meters IS DISTINCT FROM EXCLUDED.meters"))
        total = _fetch(cur, "SELECT count(*) AS n FROM meters")["n"].item()
        conn.commit()
    new = merged.filter(pl.col("first_seen") == day).height
    return RegistryUpdate(presence.height, new, presence_changed, registry_changed, int(total))


def _upsert_registry(cur, rows: pl.DataFrame) -> int:
    if rows.is_empty():
        return 0
    _stage(cur, "fleet_registry_new", rows.select(list(REGISTRY_COLUMNS)))
    columns = ", ".join(REGISTRY_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _REGISTRY_VALUES)
    old = ", ".join(f"meters.{c}" for c in _REGISTRY_VALUES)
    new = ", ".join(f"EXCLUDED.{c}" for c in _REGISTRY_VALUES)
    return _execute(cur, (
        f"INSERT INTO meters ({columns}) SELECT {columns} FROM fleet_registry_new "
        f"ON CONFLICT (meter_id) DO UPDATE SET {updates}, updated_at = now() "
        f"WHERE ({old}) IS DISTINCT FROM ({new})"))


def fetch_registry(database_url: str, meter_id: str | None = None) -> pl.DataFrame:
    """The registry (REGISTRY_COLUMNS), or one meter's row."""
    where = "" if meter_id is None else " WHERE meter_id = $1"
    with OperationalStore(database_url).adbc() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(REGISTRY_COLUMNS)} FROM meters{where} ORDER BY meter_id",
                    None if meter_id is None else (meter_id,))
        frame = pl.from_arrow(cur.fetch_arrow_table())
    return frame.cast(REGISTRY_COLUMNS)


def fetch_lookback(database_url: str, day: date, lookback_days: int, partitions_start: date) -> Lookback:
    """Each meter's latest day of D-L..D-1, the meters of D and those first seen on D."""
    first = max(lookback_first_day(day, lookback_days), partitions_start)
    with OperationalStore(database_url).adbc() as conn, conn.cursor() as cur:
        last_seen = _fetch(cur, (
            "SELECT meter_id, max(partition_date) AS partition_date FROM meter_presence "
            f"WHERE partition_date >= {_day(first)} AND partition_date < {_day(day)} GROUP BY meter_id"))
        day_meters = _fetch(cur, f"SELECT meter_id FROM meter_presence WHERE partition_date = {_day(day)}")
        new_meters = _fetch(cur, f"SELECT meter_id FROM meters WHERE first_seen = {_day(day)}")
        recorded = _fetch(cur, (f"SELECT partition_date FROM fleet_days WHERE partition_date >= {_day(first)} "
                                f"AND partition_date <= {_day(day)}"))
    recorded_days = set(recorded["partition_date"].to_list()) if recorded.height else set()
    span = (day - first).days
    missing = [d for d in (first + timedelta(days=k) for k in range(span)) if d not in recorded_days]
    return Lookback(
        last_seen=last_seen.cast({"meter_id": pl.Utf8, "partition_date": pl.Date}),
        day_meters=day_meters.cast({"meter_id": pl.Utf8}),
        new_meters=new_meters.cast({"meter_id": pl.Utf8}),
        missing_days=missing,
        day_recorded=day in recorded_days,
    )


def store_silent_meters(database_url: str, day: date, silent: pl.DataFrame) -> int:
    """Make the day's `silent_meters` rows equal `silent`; returns rows inserted, updated or deleted."""
    silent = silent.select(list(SILENT_COLUMNS)).cast(SILENT_COLUMNS)
    store = OperationalStore(database_url)
    with store.connect() as conn:
        ensure_day_partitions(conn, day, ("silent_meters",))
    with store.adbc() as conn, conn.cursor() as cur:
        _stage(cur, "fleet_silent_new", silent)
        changed = _execute(cur, (
            f"DELETE FROM silent_meters s WHERE s.partition_date = {_day(day)} AND NOT EXISTS "
            "(SELECT 1 FROM fleet_silent_new n WHERE n.meter_id = s.meter_id)"))
        changed += _execute(cur, (
            "INSERT INTO silent_meters (partition_date, meter_id, last_seen, silent_days) "
            "SELECT partition_date, meter_id, last_seen, silent_days FROM fleet_silent_new "
            "ON CONFLICT (partition_date, meter_id) DO UPDATE SET last_seen = EXCLUDED.last_seen, "
            "silent_days = EXCLUDED.silent_days, loaded_at = now() "
            "WHERE (silent_meters.last_seen, silent_meters.silent_days) "
            "IS DISTINCT FROM (EXCLUDED.last_seen, EXCLUDED.silent_days)"))
        conn.commit()
    return changed


def fetch_silent_days(database_url: str, meter_id: str, limit: int = 30) -> pl.DataFrame:
    """A meter's most recent silent days (SILENT_COLUMNS), newest first."""
    with OperationalStore(database_url).adbc() as conn, conn.cursor() as cur:
        cur.execute("SELECT partition_date, meter_id, last_seen, silent_days FROM silent_meters "
                    "WHERE meter_id = $1 ORDER BY partition_date DESC LIMIT $2", (meter_id, limit))
        frame = pl.from_arrow(cur.fetch_arrow_table())
    return frame.cast(SILENT_COLUMNS)
