"""Where each day's readings go: keys, compression, timestamp style and format quirks.

Readings files hold `meters_per_file` meters each, named
`raw-data/YYYY-MM-DD/readings-NNNN.csv[.gz]`. The day's revision and
redelivery files are `zz-revisions-0001.csv` and `zz-redelivery-0001.csv`: a
later key, so a plain upload in key order delivers them last (SPEC §2 orders
deliveries by last-modified time, then key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from greenstream_dagster.generator.config import GeneratorConfig
from greenstream_dagster.generator.load_profile import rng_for
from greenstream_dagster.generator.timestamps import STYLE_WEIGHTS
from greenstream_dagster.rules.landing_key import date_folder

STREAM_LAYOUT = 4
FIELDS = ("meter_id", "timestamp", "value", "unit")
QUIRKS = {
    "bom": "UTF-8 byte order mark before the header",
    "crlf": "CRLF line endings",
    "blank_lines": "blank lines after the header, in the middle and at the end",
    "quoted": "every field quoted (RFC 4180)",
    "extra_columns": "header 'Unit, VALUE ,site_id,Meter_ID,timestamp,firmware': "
                     "shuffled order, mixed case and spaces, two extra columns",
    "padded": "spaces around every field",
    "nested": "file in a sub-folder of the date folder",
}
# extra_columns: (header name, source field or "=constant"), in file order.
EXTRA_COLUMN_LAYOUT = (("Unit", "unit"), (" VALUE ", "value"), ("site_id", "=DE-N-07"),
                       ("Meter_ID", "meter_id"), ("timestamp", "timestamp"), ("firmware", "=fw 2.1"))


@dataclass(frozen=True)
class FileLayout:
    """How one readings file is written and which meters it holds."""

    key: str
    first_meter: int
    end_meter: int
    gzip: bool = False
    timestamp_style: str = "zulu"
    quirks: frozenset[str] = frozenset()

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        if "extra_columns" in self.quirks:
            return EXTRA_COLUMN_LAYOUT
        return tuple((name, name) for name in FIELDS)

    @property
    def line_end(self) -> str:
        return "\r\n" if "crlf" in self.quirks else "\n"


def revisions_key(day: date) -> str:
    return f"{date_folder(day)}zz-revisions-0001.csv"


def redelivery_key(day: date) -> str:
    return f"{date_folder(day)}zz-redelivery-0001.csv"


def plan_layouts(config: GeneratorConfig, days: list[date]) -> list[list[FileLayout]]:
    """The readings files of every day, in key order."""
    rng = rng_for(config.seed, STREAM_LAYOUT)
    per_day = math.ceil(config.meters / config.meters_per_file)
    total = per_day * len(days)
    styles = list(STYLE_WEIGHTS)
    style_of = rng.choice(len(styles), size=total, p=list(STYLE_WEIGHTS.values()))
    if total >= len(styles):  # every style at least once, so small datasets cover them all
        style_of[rng.permutation(total)[: len(styles)]] = np.arange(len(styles))
    gzipped = set(rng.choice(total, size=math.floor(config.gzip_share * total + 0.5), replace=False).tolist())
    quirks_of: dict[int, set[str]] = {}
    if config.format_quirks:
        order = rng.permutation(total).tolist()
        for i, quirk in enumerate(QUIRKS):
            quirks_of.setdefault(order[i % total], set()).add(quirk)
    layouts = []
    for d, day in enumerate(days):
        files = []
        for f in range(per_day):
            n = d * per_day + f
            quirks = frozenset(quirks_of.get(n, ()))
            folder = date_folder(day) + ("site-north/" if "nested" in quirks else "")
            suffix = ".csv.gz" if n in gzipped else ".csv"
            files.append(FileLayout(
                key=f"{folder}readings-{f:04d}{suffix}",
                first_meter=f * config.meters_per_file,
                end_meter=min(config.meters, (f + 1) * config.meters_per_file),
                gzip=n in gzipped,
                timestamp_style=styles[int(style_of[n])],
                quirks=quirks,
            ))
        layouts.append(files)
    return layouts
