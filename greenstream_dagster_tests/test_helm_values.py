"""deploy/helm/values.yaml (SPEC §10): valid for Dagster's `dagster` chart and the same platform as dagster.yaml.

No cluster and no Helm here: the values are checked against the chart's own values
schema (vendored, see deploy/helm/README.md) and against the project's instance file.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._serdes.config_class import ConfigurableClassData
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from greenstream_dagster.defs.executor import executor_for
from greenstream_dagster.settings import load_settings
from greenstream_dagster_tests.test_deployment_files import DEFINITIONS_MODULE, LOCAL_INSTANCE, _image_env

HELM = Path(__file__).resolve().parents[1] / "deploy" / "helm"
SCHEMA = HELM / "dagster-chart.values.schema.json"


@functools.cache
def _values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


@functools.cache
def _chart_schema() -> dict:
    return json.loads(SCHEMA.read_text())


def _external_refs(node) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) and not node["$ref"].startswith("#") else set()
        return own.union(*(_external_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_external_refs(value) for value in node))
    return set()


def _kubernetes_registry(schema: dict) -> Registry:
    """The chart points its Kubernetes objects at a published copy of Kubernetes' definitions, which
    is not fetched here: each pointer resolves to an empty schema, so those objects are held only to
    the chart's own keywords beside the pointer (their names and types are checked below)."""
    documents: dict[str, dict] = {}
    for ref in _external_refs(schema):
        uri, _, pointer = ref.partition("#")
        node = documents.setdefault(uri, {})
        for part in pointer.strip("/").split("/"):
            node = node.setdefault(part, {})
    return Registry().with_resources((uri, Resource.from_contents(doc, default_specification=DRAFT202012))
                                     for uri, doc in documents.items())


def _strict(schema: dict) -> dict:
    """The chart's schema as applied to our file alone. Helm validates our values merged over the
    chart's defaults, which fill every `required` key, so those lists are dropped; and an object the
    chart describes takes no key it does not describe (the chart would ignore a misspelt one)."""
    strict = copy.deepcopy(schema)
    for node in (strict, *strict["$defs"].values()):
        node.pop("required", None)
        if node.get("properties") and not str(node.get("$ref", "#")).startswith("http"):
            node["additionalProperties"] = False
    return strict


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, registry=_kubernetes_registry(schema))


def _errors(values: dict) -> list[str]:
    errors = _validator(_strict(_chart_schema())).iter_errors(values)
    return sorted(f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)


# ---------------------------------------------------------------- the chart's schema

def test_the_vendored_schema_is_the_one_its_readme_names():
    readme = (HELM / "README.md").read_text()
    [digest] = re.findall(r"sha256 `([0-9a-f]{64})`", readme)
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == digest
    jsonschema.Draft202012Validator.check_schema(_chart_schema())
    assert _chart_schema()["title"] == "DagsterHelmValues"


def test_values_validate_against_the_charts_schema():
    assert _errors(_values()) == []
    # Against the schema as published, the only complaints are keys that the chart's defaults fill
    # (an optional section's other branch, `null`, failing beside them).
    def leaves(errors):
        for error in errors:
            yield from leaves(error.context) if error.context else [error]

    complaints = {(error.validator, str(error.validator_value)) for error in leaves(_validator(_chart_schema()).iter_errors(_values()))}
    assert {validator for validator, value in complaints if (validator, value) != ("type", "null")} == {"required"}


@pytest.mark.parametrize("change", ["misspelt key", "wrong type", "unknown launcher", "coordinator without its config"])
def test_the_schema_check_refuses_what_the_chart_would_not_take(change):
    values = copy.deepcopy(_values())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    if change == "misspelt key":
        deployment["dagsterApiGrpcArg"] = deployment.pop("dagsterApiGrpcArgs")
    elif change == "wrong type":
        deployment["port"] = "3030"
    elif change == "unknown launcher":
        values["runLauncher"]["type"] = "DockerRunLauncher"
    else:
        del values["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    assert _errors(values), change


def test_kubernetes_objects_we_set_have_only_kubernetes_fields():
    """The env config maps and secrets the schema leaves to Kubernetes: checked against the client's models."""
    from kubernetes.client import V1ConfigMapEnvSource, V1SecretEnvSource

    deployment = _values()["dagster-user-deployments"]["deployments"][0]
    launcher = _values()["runLauncher"]["config"]["k8sRunLauncher"]
    for model, sources in ((V1ConfigMapEnvSource, deployment["envConfigMaps"] + launcher["envConfigMaps"]),
                           (V1SecretEnvSource, deployment["envSecrets"] + launcher["envSecrets"])):
        for source in sources:
            assert set(source) <= set(model.attribute_map.values()) and source["name"], source


# ---------------------------------------------------------------- what the values say

def test_one_image_serves_the_code_the_webserver_and_the_daemon():
    [deployment] = _values()["dagster-user-deployments"]["deployments"]
    image = deployment["image"]
    # The webserver and the daemon load the run coordinator, a class of the project's package.
    assert _values()["dagsterWebserver"]["image"] == image == _values()["dagsterDaemon"]["image"]
    assert _values()["global"]["dagsterHome"] == _image_env()["DAGSTER_HOME"]


def test_the_code_location_is_the_definitions_module_on_the_k8s_executor():
    [deployment] = _values()["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == DEFINITIONS_MODULE
    settings = load_settings(deployment["env"])
    assert settings.executor == "k8s" and executor_for(settings).name == "k8s"
    # Runs, and the step jobs they start, get the same settings as the code server.
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    launcher = _values()["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    for key in ("envConfigMaps", "envSecrets"):
        assert launcher["config"]["k8sRunLauncher"][key] == deployment[key], key


def test_the_run_queue_is_dagster_yamls():
    local = yaml.safe_load(LOCAL_INSTANCE.read_text())
    coordinator = _values()["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert custom == local["run_coordinator"]
    built = ConfigurableClassData(custom["module"], custom["class"], yaml.safe_dump(custom["config"])).rehydrate()
    assert isinstance(built, QueuedRunCoordinator)
    assert getattr(importlib.import_module(custom["module"]), custom["class"]) is type(built)


def test_monitoring_retries_retention_and_telemetry_are_dagster_yamls():
    local = yaml.safe_load(LOCAL_INSTANCE.read_text())
    daemon = _values()["dagsterDaemon"]
    monitoring = {re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), key): value for key, value in daemon["runMonitoring"].items()}
    assert monitoring.items() <= local["run_monitoring"].items()
    retries = daemon["runRetries"]
    assert (retries["enabled"], retries["maxRetries"], retries["retryOnAssetOrOpFailure"]) == (
        local["run_retries"]["enabled"], local["run_retries"]["max_retries"], local["run_retries"]["retry_on_asset_or_op_failure"])
    retention = _values()["retention"]
    assert retention["enabled"]
    assert retention["schedule"]["purgeAfterDays"] == local["retention"]["schedule"]["purge_after_days"]
    assert local["retention"]["sensor"]["purge_after_days"].items() <= retention["sensor"]["purgeAfterDays"].items()
    assert _values()["telemetry"] == local["telemetry"]


def test_dagsters_storage_is_an_external_postgresql_with_its_password_in_a_secret():
    postgresql = _values()["postgresql"]
    assert postgresql["enabled"] is False and postgresql["postgresqlHost"] and postgresql["postgresqlDatabase"]
    assert "postgresqlPassword" not in postgresql
    assert _values()["generatePostgresqlPasswordSecret"] is False  # else the chart writes its default password
    assert _values()["global"]["postgresqlSecretName"]
