"""A setting declared once (issue 19): its variable, kind, default, bounds and meaning.

The declaration is plain data on a dataclass field (`declared(...)`). From it the
dataclass checks its values (`check_declared`), settings.py reads the environment,
and defs/resources.py makes the launchpad's RulesResource fields, so adding a
threshold is one line here and one in the README. Pure: no environment, no Dagster.
"""

from __future__ import annotations

import builtins
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

_KEY = "greenstream.setting"  # where a field's metadata holds its declaration


class Refused(ValueError):
    """A value or a text a setting cannot take; the caller names the setting."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


class FieldError(ValueError):
    """A declared dataclass field holds a value it cannot take; `field` is the field's name."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def shown(value: object) -> str:
    """A value as an error shows it: bounded and escaped when it is text (it may be anything)."""
    if isinstance(value, str):
        return repr(value[:40] + ("…" if len(value) > 40 else ""))
    return str(value)


@dataclass(frozen=True)
class Kind:
    """How one kind of value is read from text, checked, and held in run config."""

    expected: str  # said when a text cannot be read, e.g. "a finite decimal number"
    type: type
    parse: Callable[[str], Any]  # raises ValueError when the text is not one
    problem: Callable[[Any, Setting], str | None]  # why a value is refused, None when it is not
    text: Callable[[Any], str] | None = None  # run config is JSON: a date or a time is text there

    @property
    def launchpad_type(self) -> builtins.type:
        return str if self.text is not None else self.type


@dataclass(frozen=True)
class Setting:
    """One setting: where it comes from, what it holds, its spec default, its bounds and what it means."""

    env: str | None  # the variable; None: not read from the environment (run config and tests only)
    kind: Kind
    default: Any
    doc: str
    minimum: Any = None
    maximum: Any = None
    above: Any = None  # an exclusive lower bound: a variance or a sigma of 0 flags everything
    choices: tuple[str, ...] = ()
    per_run: bool = False  # shown in the launchpad with the rules (RulesResource), overridable per run
    field: str = ""  # the dataclass field, filled in by declared_settings()
    owner: type | None = None  # the dataclass, filled in by declared_settings()

    def check(self, value: Any) -> Any:
        """`value` if the setting can take it, else Refused saying why."""
        problem = self.kind.problem(value, self) or self._out_of_bounds(value)
        if problem is not None:
            raise Refused(problem)
        return value

    def read(self, text: str) -> Any:
        """The value a text stands for, checked."""
        try:
            value = self.kind.parse(text)
        except ValueError:
            raise Refused(f"expected {self.kind.expected}, got {shown(text)}") from None
        return self.check(value)

    def launchpad_value(self, value: Any) -> Any:
        return self.kind.text(value) if self.kind.text is not None else value

    def _out_of_bounds(self, value: Any) -> str | None:
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {shown(self.minimum)}, got {shown(value)}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {shown(self.maximum)}, got {shown(value)}"
        if self.above is not None and value <= self.above:
            return f"must be above {shown(self.above)}, got {shown(value)}"
        return None


def declared(env: str | None, kind: Kind, default: Any, doc: str, *, repr: bool = True, **bounds: Any) -> Any:
    """A dataclass field with its setting's declaration: `x: float = declared("GREENSTREAM_X", DECIMAL, 0.5, "...")`."""
    return dataclasses.field(default=default, repr=repr, metadata={_KEY: Setting(env, kind, default, doc, **bounds)})


@cache
def declared_settings(cls: type[Any]) -> tuple[Setting, ...]:
    """The declared fields of a dataclass, in their order."""
    return tuple(dataclasses.replace(f.metadata[_KEY], field=f.name, owner=cls)
                 for f in dataclasses.fields(cls) if _KEY in f.metadata)


def check_declared(instance: object, error: type[FieldError] = FieldError) -> None:
    """Raise `error` naming the first declared field whose value its setting refuses."""
    # A class is hashable; mypy reads typeshed's unbound type.__hash__ as not.
    for setting in declared_settings(type(instance)):  # type: ignore[arg-type]
        try:
            setting.check(getattr(instance, setting.field))
        except Refused as refused:
            raise error(setting.field, refused.problem) from None


# Plain ASCII decimals only: Python's int()/float() also take "nan", "inf", "1_000" and
# non-ASCII digits ("٣"), none of which anyone means in a threshold.
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")  # 5000 digits would only cost int() its time
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(:[0-9]{2})?")


def _matching(pattern: re.Pattern, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if pattern.fullmatch(text) is None:
            raise ValueError(text)
        return convert(text)
    return parse


def _decimal_problem(value: Any, _: Setting) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {shown(value)}"
    if not math.isfinite(value):  # NaN switches every comparison off, hence its rule
        return f"must be a finite number, got {shown(value)}"
    return None


def _count_problem(value: Any, _: Setting) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected a whole number, got {shown(value)}"
    return None


def _date_problem(value: Any, _: Setting) -> str | None:
    return None if isinstance(value, date) else f"expected a date, got {shown(value)}"


def _time_problem(value: Any, _: Setting) -> str | None:
    if not isinstance(value, time) or value.tzinfo is not None:
        return f"expected a local time of day without offset, got {shown(value)}"
    return None


def _zone_problem(value: Any, _: Setting) -> str | None:
    """A zone both the standard library and Polars know (`right/UTC`, `posixrules` are only the former's)."""
    if not isinstance(value, str) or not value or not _known_zone(value):
        return f"unknown time zone {shown(value)}"
    return None


@lru_cache(maxsize=64)
def _known_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
        pl.Series([datetime(2024, 1, 1)]).dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError, pl.exceptions.PolarsError):
        return False
    return True


def _choice_problem(value: Any, setting: Setting) -> str | None:
    if value not in setting.choices:
        return f"expected one of {', '.join(setting.choices)}, got {shown(value)}"
    return None


def _text_problem(value: Any, _: Setting) -> str | None:
    return None if isinstance(value, str) else f"expected text, got {shown(value)}"


def _path_problem(value: Any, _: Setting) -> str | None:
    return None if isinstance(value, Path) else f"expected a path, got {shown(value)}"


DECIMAL = Kind("a finite decimal number", float, _matching(_DECIMAL, float), _decimal_problem)
COUNT = Kind("a whole number", int, _matching(_WHOLE, int), _count_problem)
DATE = Kind("a date YYYY-MM-DD", date, _matching(_DATE, date.fromisoformat), _date_problem, text=date.isoformat)
TIME = Kind("a local time HH:MM", time, _matching(_TIME, time.fromisoformat), _time_problem,
            text=lambda value: value.isoformat(timespec="minutes"))
ZONE = Kind("a time zone", str, str, _zone_problem)
CHOICE = Kind("one of its choices", str, str.lower, _choice_problem)
TEXT = Kind("text", str, str, _text_problem)
PATH = Kind("a path", Path, Path, _path_problem)
