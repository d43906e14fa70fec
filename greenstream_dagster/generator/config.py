"""What to generate: size, layout and the injections, all off by default.

A default `GeneratorConfig` describes a clean dataset: every meter reports 96
readings a day in allowed units, and nothing in it trips a quality rule.
`with_preset("default")` turns on a small mix of every injection for demos.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from greenstream_dagster.generator.bad_rows import VALIDATION_KINDS
from greenstream_dagster.rules.config import RulesConfig

PRESETS = ("none", "default")


class GeneratorError(ValueError):
    """The configuration cannot produce the dataset it describes; the message says why."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Size, layout and injections of one synthetic landing zone."""

    out: Path
    meters: int = 1_000
    days: int = 7
    start: date = date(2024, 4, 15)
    seed: int = 0
    meters_per_file: int = 1_000
    gzip_share: float = 0.0  # share of readings files written as .csv.gz
    # SPEC §3 faults: each is a count of meters, one fault each.
    stuck_meters: int = 0  # one whole day at a constant value
    spike_meters: int = 0  # one reading far above mean + 4σ of the 7-day window
    gap_meters: int = 0  # silent for `gap_days` whole days
    gap_days: int = 2
    # SPEC §3a silence: meters that stop reporting (no row at all) for whole days.
    silent_meters: int = 0  # silent for `silent_days` days from a day after the first, then back
    silent_days: int = 3
    vanished_meters: int = 0  # silent from a day after the first to the last day: never return
    # SPEC §3b: meters that miss one run of 1–8 consecutive slots every day (some at the day's edges).
    short_gap_meters: int = 0
    # SPEC §2 rows, per partition day.
    quarantine_rows: int = 0  # rows per quarantine code
    validation_rows: int = 0  # placeable rows per validation issue kind
    revisions: int = 0  # readings re-delivered later with another value
    duplicates: int = 0  # readings delivered again unchanged
    # SPEC §1 files: one of each kind when on.
    dead_letter_files: bool = False
    ignored_keys: bool = False
    format_quirks: bool = False  # BOM, CRLF, blank lines, quoting, extra columns …
    # Thresholds the expected detections in the manifest are computed with.
    rules: RulesConfig = field(default_factory=RulesConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        _require(self.meters >= 1, "meters must be at least 1")
        _require(self.days >= 1, "days must be at least 1")
        _require(self.meters_per_file >= 1, "meters_per_file must be at least 1")
        _require(0.0 <= self.gzip_share <= 1.0, "gzip_share must be between 0 and 1")
        for name in ("stuck_meters", "spike_meters", "gap_meters", "silent_meters", "vanished_meters",
                     "short_gap_meters", "quarantine_rows",
                     "validation_rows", "revisions", "duplicates"):
            _require(getattr(self, name) >= 0, f"{name} must not be negative")
        _require(self.gap_days >= 2, "gap_days must be at least 2 (one silent day of 5 "
                 "is a missing rate of exactly 0.20, on the gap threshold)")
        if self.gap_meters:
            _require(self.days > self.gap_days, f"gap_meters needs more than gap_days "
                     f"({self.gap_days}) days, so the meter reports again after its silence")
        _require(self.silent_days >= 2, "silent_days must be at least 2 (as gap_days: one silent day of 5 "
                 "is a missing rate on the gap threshold)")
        if self.silent_meters:
            _require(self.days >= self.silent_days + 2, f"silent_meters needs at least silent_days + 2 "
                     f"({self.silent_days + 2}) days: seen before the silence and back after it")
        _require(not self.vanished_meters or self.days >= 2, "vanished_meters needs at least 2 days")
        # A stuck first day would be a window without spread: its spike test hangs on rounding.
        _require(not self.stuck_meters or self.days >= 2, "stuck_meters needs at least 2 days")
        dedicated = self.dedicated_meters
        _require(dedicated <= self.meters, f"the injections need {dedicated} distinct meters "
                 f"but only {self.meters} are generated")

    @property
    def dedicated_meters(self) -> int:
        """Meters that carry an injection; each carries exactly one, so causes never mix."""
        per_day = self.validation_rows * len(VALIDATION_KINDS) + self.revisions + self.duplicates
        return (self.stuck_meters + self.spike_meters + self.gap_meters + self.silent_meters
                + self.vanished_meters + self.short_gap_meters + per_day * self.days)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["start"] = self.start.isoformat()
        data["rules"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                         for k, v in data["rules"].items()}
        return data


def with_preset(config: GeneratorConfig, preset: str) -> GeneratorConfig:
    """`none`: as given. `default`: a small mix of every injection, about 0.1 % of meters per fault,
    and 3 % of meters with a short gap every day (what VEE estimates, SPEC §3b)."""
    if preset not in PRESETS:
        raise GeneratorError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if preset == "none":
        return config
    per_fault = max(1, round(config.meters * 0.001))
    return dataclasses.replace(
        config,
        stuck_meters=per_fault,
        spike_meters=per_fault,
        gap_meters=per_fault if config.days > config.gap_days else 0,
        short_gap_meters=max(1, round(config.meters * 0.03)),
        quarantine_rows=2,
        validation_rows=1,
        revisions=3,
        duplicates=3,
        dead_letter_files=True,
        ignored_keys=True,
        format_quirks=True,
    )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise GeneratorError(message)
