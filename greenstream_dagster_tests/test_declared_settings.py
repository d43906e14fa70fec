"""Issue 19: each setting is declared once, and the environment, the bounds, the launchpad and the errors follow.

The declarations are held against facts written apart from them: the README's
table of variables and defaults, and the launchpad's fields users' run configs
name. Then every declared bound is tried at each door (the environment, the
launchpad, the dataclass), so a bound that one of them skipped would fail here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import takewhile
from pathlib import Path

import pytest

from greenstream_dagster.defs.resources import PER_RUN, RulesResource
from greenstream_dagster.rules.config import RulesConfig, RulesConfigError
from greenstream_dagster.rules.declared_settings import COUNT, DATE, DECIMAL, PATH, TEXT, FieldError, declared_settings
from greenstream_dagster.rules.reading_limits import ReadingLimits
from greenstream_dagster.settings import ENVIRONMENT, ConfigurationError, Settings, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"
# Read by Dagster and the commands that start it, not by load_settings.
_DAGSTERS = {"DAGSTER_HOME", "DAGSTER_POSTGRES_URL"}
# Its default is another setting's value, which the README says in words.
_DEFAULT_IN_WORDS = {"GREENSTREAM_SCHEDULE_TIMEZONE"}
# The launchpad's fields and their run config types as users' run configs name them (resources.rules.config.<field>):
# a new threshold may join them, none of these may go or change type.
LAUNCHPAD = {
    "partitions_start": str, "min_kw": float, "max_kw": float, "timezone": str, "peak_start": str, "peak_end": str,
    "hemisphere": str, "window_days": int, "stuck_variance_kw2": float, "stuck_min_readings": int, "spike_sigmas": float,
    "spike_min_readings": int, "gap_max_missing_rate": float, "silent_lookback_days": int, "max_estimate_slots": int,
    "check_warn_share": float, "silent_warn_share": float,
}


def _readme_defaults() -> dict[str, str | None]:
    """Variable → its default as the README's table writes it; None where the default is not one value."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| variable | default | meaning |")
    table = {}
    for row in takewhile(lambda line: line.startswith("|"), lines[start + 2:]):
        names_cell, default_cell, _ = (cell.strip() for cell in row.strip("|").split("|", 2))
        names = [name.replace("…_", "GREENSTREAM_") for name in re.findall(r"`([^`]+)`", names_cell)]
        values = re.findall(r"`([^`]+)`", default_cell)
        if len(names) > 1:
            values = values if len(values) == len(names) else [None] * len(names)
        table.update(zip(names, values[:1] or [None]) if len(names) == 1 else zip(names, values))
    return table


def _value(settings: Settings, setting):
    source = {Settings: settings, RulesConfig: settings.rules, ReadingLimits: settings.reading_limits}[setting.owner]
    return getattr(source, setting.field)


def test_the_readme_lists_every_variable_load_settings_reads_and_no_other():
    readme = set(_readme_defaults()) - _DAGSTERS
    declared = {s.env for s in ENVIRONMENT}
    assert len(declared) == len(ENVIRONMENT) >= 35, "a variable declared twice"
    assert readme == declared


@pytest.mark.parametrize("setting", ENVIRONMENT, ids=lambda s: s.env)
def test_the_declared_default_is_the_readmes(setting):
    written = _readme_defaults()[setting.env]
    if written is None:
        assert setting.default is None or setting.env in _DEFAULT_IN_WORDS
    else:
        assert setting.read(written) == setting.default
        assert _value(load_settings({}), setting) == (setting.default.absolute() if setting.kind is PATH else setting.default)


def test_the_launchpad_keeps_the_fields_run_configs_name_and_shows_every_rule():
    fields = RulesResource.model_fields
    assert LAUNCHPAD.items() <= {name: field.annotation for name, field in fields.items()}.items()
    assert set(fields) == {s.field for s in declared_settings(RulesConfig)} | {"check_warn_share", "silent_warn_share"}
    for setting in PER_RUN:
        assert fields[setting.field].default == setting.launchpad_value(setting.default)
        assert fields[setting.field].description == setting.doc


def test_the_launchpad_defaults_are_the_environments_defaults():
    assert RulesResource.from_settings(load_settings({})) == RulesResource()
    assert RulesResource().config() == RulesConfig() == load_settings({}).rules


def test_an_environment_value_reaches_the_launchpad():
    settings = load_settings({"GREENSTREAM_PEAK_START": "06:30", "GREENSTREAM_CHECK_WARN_SHARE": "0.2", "GREENSTREAM_MAX_KW": "50"})
    resource = RulesResource.from_settings(settings)
    assert (resource.peak_start, resource.check_warn_share, resource.max_kw) == ("06:30", 0.2, 50.0)
    assert resource.config() == settings.rules


@pytest.mark.parametrize("setting", [s for s in ENVIRONMENT if s.kind not in (TEXT, PATH)], ids=lambda s: s.env)
def test_every_variable_is_read_and_a_text_that_is_no_value_is_refused_naming_it(setting):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({setting.env: "no value ٣"})
    assert raised.value.setting == setting.env
    assert str(raised.value).startswith(f"{setting.env}: ") and "\n" not in str(raised.value)


def _edges(setting):
    """(value at a bound, value just beyond it) for each bound the setting declares."""
    step = {COUNT: 1, DECIMAL: 0.001, DATE: timedelta(days=1)}.get(setting.kind)
    if setting.minimum is not None:
        yield setting.minimum, setting.minimum - step
    if setting.maximum is not None:
        yield setting.maximum, setting.maximum + step
    if setting.above is not None:
        yield setting.above + step, setting.above


_BOUNDED = [pytest.param(s, at, beyond, id=f"{s.field}={beyond}") for cls in (Settings, RulesConfig, ReadingLimits)
            for s in declared_settings(cls) for at, beyond in _edges(s)]


def _text(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else repr(value)


@pytest.mark.parametrize("setting, at, beyond", [p for p in _BOUNDED if p.values[0].env is not None])
def test_the_environment_keeps_every_declared_bound(setting, at, beyond):
    assert _value(load_settings({setting.env: _text(at)}), setting) == at
    with pytest.raises(ConfigurationError) as raised:
        load_settings({setting.env: _text(beyond)})
    assert raised.value.setting == setting.env


@pytest.mark.parametrize("setting, at, beyond", [p for p in _BOUNDED if p.values[0].per_run or p.values[0].owner is RulesConfig])
def test_the_launchpad_keeps_every_declared_bound(setting, at, beyond):
    as_run_config = setting.launchpad_value
    RulesResource(**{setting.field: as_run_config(at)}).config()
    with pytest.raises(ConfigurationError) as raised:
        RulesResource(**{setting.field: as_run_config(beyond)}).config()
    assert raised.value.setting == f"resources.rules.config.{setting.field}"


@pytest.mark.parametrize("setting, at, beyond", [p for p in _BOUNDED if p.values[0].owner in (RulesConfig, ReadingLimits)])
def test_the_dataclass_keeps_every_declared_bound(setting, at, beyond):
    setting.owner(**{setting.field: at})
    with pytest.raises(FieldError) as raised:
        setting.owner(**{setting.field: beyond})
    assert raised.value.field == setting.field
    assert setting.owner is not RulesConfig or isinstance(raised.value, RulesConfigError)
