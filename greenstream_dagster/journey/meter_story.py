"""`greenstream journey --meter M` without a timestamp: the meter's registry entry and its
recent silent days (SPEC §3a), from the operational store."""

from __future__ import annotations

from greenstream_dagster.storage.operational.fleet import fetch_registry, fetch_silent_days

RECENT_SILENT_DAYS = 30


def meter_facts(database_url: str, meter_id: str) -> dict | None:
    registry = fetch_registry(database_url, meter_id)
    if registry.is_empty():
        return None
    entry = registry.row(0, named=True)
    silent = fetch_silent_days(database_url, meter_id, RECENT_SILENT_DAYS)
    return {
        "meter_id": meter_id,
        "first_seen": entry["first_seen"].isoformat(),
        "last_seen": entry["last_seen"].isoformat(),
        "last_reading_ts": entry["last_reading_ts"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_seen": entry["days_seen"],
        "silent_days": [{"date": d.isoformat(), "last_seen": s.isoformat(), "silent_days": n}
                        for d, _, s, n in silent.rows()],
    }


def render_meter(facts: dict) -> str:
    title = f"Meter {facts['meter_id']} in the registry"
    lines = [title, "=" * len(title),
             f"First seen {facts['first_seen']}, last seen {facts['last_seen']} "
             f"(last reading {facts['last_reading_ts']}), {facts['days_seen']} "
             f"day{'s' if facts['days_seen'] != 1 else ''} with readings.",
             ""]
    silent = facts["silent_days"]
    if not silent:
        lines.append(f"No silent day among the stored days (the last {RECENT_SILENT_DAYS} are shown when there are).")
    else:
        lines.append("Silent days, newest first (no placeable row that day, seen in the look-back):")
        lines += [f"   - {s['date']}: silent {s['silent_days']} day(s) since {s['last_seen']}" for s in silent]
    return "\n".join(lines) + "\n"
