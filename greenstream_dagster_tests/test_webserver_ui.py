"""The Dagster UI on the real code location (SPEC §6, §8): `dagster-webserver -w workspace.yaml`
serves the contract's assets, checks, sensor and schedules, and a headless Chromium sees them.

Two partition days are ingested first (generator → landing zone → sensor → runs), so the
pages show materializations and check results, not an empty deployment. Screenshots land
in test-output/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from greenstream_dagster.definitions import build_definitions
from greenstream_dagster.defs.resources import S3Resource
from greenstream_dagster.generator.config import GeneratorConfig, with_preset
from greenstream_dagster.generator.generation import generate
from greenstream_dagster.rules.config import RulesConfig
from greenstream_dagster.services import embedded_s3
from greenstream_dagster.settings import load_settings
from greenstream_dagster.storage.operational.migrate import apply_migrations
from greenstream_dagster.upload_command import upload_folder
from greenstream_dagster_tests.browser import Browser, chromium_unavailable_reason, find_chromium
from greenstream_dagster_tests.fixtures_postgres import with_database
from greenstream_dagster_tests.fixtures_s3 import delete_bucket

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"
TODAY = datetime.now(timezone.utc).date()
DAYS = [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]  # inside the sensor's look-back
ASSETS = {"raw_readings", "standardized_readings", "scored_readings", "meter_readings", "lake_readings",
          "lake_meter_daily"}
FLEET_ASSETS = {"meter_registry", "silent_meters"}  # SPEC §3a; landing_zone is an (unpartitioned) source asset
GROUPS = ("readings", "stores", "lake")
CHECKS = {"stuck_meters", "erratic_spikes", "communication_gaps"}
ALL_CHECKS_PASSED = re.compile(r"\b(\d+) / \1 Passed")  # the graph node's "4 / 4 Passed"
STARTUP_SECONDS = 60

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


# The test fixtures give a bucket and a database per test; the webserver is started once
# for this module, so it gets its own bucket and database on the session's servers.
@pytest.fixture(scope="module")
def ui_bucket(s3_client):
    name = f"test-ui-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    delete_bucket(s3_client, name)


@pytest.fixture(scope="module")
def ui_database_url(postgres_server):
    name = f"test_ui_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(postgres_server, name)
    apply_migrations(url)
    yield url
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def platform_env(s3_endpoint_url, ui_bucket, ui_database_url, tmp_path_factory) -> dict[str, str]:
    """SPEC §8 variables for the code location, and a DAGSTER_HOME of its own (default SQLite storage)."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        "GREENSTREAM_S3_ENDPOINT_URL": s3_endpoint_url,
        "GREENSTREAM_BUCKET": ui_bucket,
        "AWS_ACCESS_KEY_ID": embedded_s3.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": embedded_s3.SECRET_ACCESS_KEY,
        "AWS_REGION": embedded_s3.REGION,
        "GREENSTREAM_DATABASE_URL": ui_database_url,
        "GREENSTREAM_PARTITIONS_START": DAYS[0].isoformat(),
        "GREENSTREAM_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "DAGSTER_HOME": str(home),
    }


@pytest.fixture(scope="module")
def ingested(platform_env, s3_client, tmp_path_factory) -> list[str]:
    """Both days through the sensor and the ingest job, recorded in DAGSTER_HOME's instance."""
    out = tmp_path_factory.mktemp("sample") / "sample"
    generate(with_preset(GeneratorConfig(out=out, meters=40, days=len(DAYS), start=DAYS[0], seed=7,
                                         rules=RulesConfig(partitions_start=DAYS[0])), "default"))
    upload_folder(s3_client, platform_env["GREENSTREAM_BUCKET"], out / "raw-data")
    with pytest.MonkeyPatch.context() as env:
        for name, value in platform_env.items():
            env.setenv(name, value)
        defs = build_definitions(load_settings())
        with dg.DagsterInstance.get() as instance:
            context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                              resources={"s3": S3Resource(bucket=platform_env["GREENSTREAM_BUCKET"])})
            requests = defs.get_sensor_def("raw_file_sensor")(context).run_requests or []
            job = defs.resolve_job_def("ingest_partition_job")
            for request in sorted(requests, key=lambda r: r.partition_key):
                result = job.execute_in_process(partition_key=request.partition_key, instance=instance,
                                                tags=request.tags)
                assert result.success, f"ingest of {request.partition_key} failed"
    assert sorted(r.partition_key for r in requests) == [d.isoformat() for d in DAYS]
    return [d.isoformat() for d in DAYS]


class Webserver:
    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "webserver log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", json.dumps({"query": query}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert "errors" not in answer, f"GraphQL errors: {answer['errors']}\n{self.log_tail()}"
        return answer["data"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(platform_env, request, tmp_path_factory):
    """dagster-webserver on workspace.yaml, loading the code location while the days are ingested."""
    # The instance's SQLite storage exists before two processes open it: only one creates its tables.
    dg.DagsterInstance.from_config(platform_env["DAGSTER_HOME"]).dispose()
    port = free_port()
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
               "-w", "workspace.yaml"]
    with open(log, "wb") as output:
        # Its own session: the webserver starts the code location's gRPC server as a child.
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **platform_env},
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    server = Webserver(f"http://127.0.0.1:{port}", log)
    try:
        request.getfixturevalue("ingested")
        wait_until_loaded(server, process)
        # The "join the community" dialog would cover every page; this is the UI's own dismissal.
        server.graphql("mutation { setNuxSeen }")
        yield server
    finally:
        stop(process)
        (PROJECT_ROOT / "test-output").mkdir(exist_ok=True)
        (PROJECT_ROOT / "test-output" / "webserver.log").write_bytes(log.read_bytes())


def wait_until_loaded(server: Webserver, process: subprocess.Popen) -> None:
    """Until /server_info answers and the code location has finished loading (bounded)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with code {process.returncode}\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=2):
                pass
            entries = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }")
            statuses = [e["loadStatus"] for e in entries["workspaceOrError"]["locationEntries"]]
            if statuses and all(s == "LOADED" for s in statuses):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(f"dagster-webserver not ready within {STARTUP_SECONDS} s\n{server.log_tail()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


REPOSITORY_QUERY = """
{
  workspaceOrError {
    ... on Workspace { locationEntries { name locationOrLoadError { __typename ... on PythonError { message } } } }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        sensors { name }
        schedules { name }
        assetNodes {
          assetKey { path }
          isPartitioned
          assetChecksOrError { ... on AssetChecks { checks { name } } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def test_the_code_location_loads_with_the_contracts_names(webserver):
    data = webserver.graphql(REPOSITORY_QUERY)
    locations = {e["name"]: e["locationOrLoadError"] for e in data["workspaceOrError"]["locationEntries"]}
    assert set(locations) == {"greenstream"}
    assert locations["greenstream"]["__typename"] == "RepositoryLocation", (
        f"code location failed to load: {locations['greenstream'].get('message')}")

    [repository] = data["repositoriesOrError"]["nodes"]
    assert repository["location"]["name"] == "greenstream"
    nodes = {"/".join(n["assetKey"]["path"]): n for n in repository["assetNodes"]}
    assert set(nodes) == ASSETS | FLEET_ASSETS | {"landing_zone"}
    assert all(nodes[name]["isPartitioned"] for name in ASSETS | FLEET_ASSETS)
    checks = {c["name"] for c in nodes["scored_readings"]["assetChecksOrError"]["checks"]}
    assert CHECKS <= checks
    assert "raw_file_sensor" in {s["name"] for s in repository["sensors"]}
    assert {"lake_rollup_schedule", "retention_schedule"} <= {s["name"] for s in repository["schedules"]}


def test_the_ingested_days_are_materialized_with_check_results(webserver, ingested):
    data = webserver.graphql("""
    {
      assetNodeOrError(assetKey: {path: ["scored_readings"]}) {
        ... on AssetNode {
          assetMaterializations(limit: 10) { partition }
          assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
        }
      }
    }""")
    node = data["assetNodeOrError"]
    assert sorted(m["partition"] for m in node["assetMaterializations"]) == ingested
    latest = {c["name"]: c["executionForLatestMaterialization"] for c in node["assetChecksOrError"]["checks"]}
    for name in CHECKS:
        assert latest[name] and latest[name]["status"] == "SUCCEEDED", (name, latest[name])


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = find_chromium()
    if executable is None:
        # Where `make test` installs the browser (root with apt-get, as on CI) its absence is a failure.
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail(f"{chromium_unavailable_reason()}; install it with `sh scripts/install-chromium`")
        pytest.skip(f"{chromium_unavailable_reason()}; `make test` installs it only as root with apt-get")
    with Browser(executable, tmp_path_factory.mktemp("chromium") / "profile") as browser:
        yield browser


def test_the_asset_graph_shows_every_asset(webserver, browser):
    # The global lineage collapses asset groups; `expanded` opens them all.
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)
    browser.open(f"{webserver.url}/asset-groups?expanded={expanded}", expect=["Global asset lineage", *GROUPS])
    # Beside the asset tree the graph is drawn too small for its nodes' details (names
    # shortened, no status): hide the tree, then double-click the canvas to fit the graph again.
    browser.evaluate("""[...document.querySelectorAll('button')]
        .find(b => b.querySelector('[aria-label=panel_show_right]') && !b.innerText.trim()).click()""")
    browser.double_click(700, 860)
    # Full nodes carry each asset's status: partitions filled, check summaries ("4 / 4 Passed").
    browser.wait_for([*ASSETS, "% filled", ALL_CHECKS_PASSED], what="the fitted asset graph")
    png = browser.screenshot(SCREENSHOTS / "asset-graph.png")
    assert_real_screenshot(png)


def test_the_scored_readings_checks_page_lists_the_fault_checks(webserver, browser, ingested):
    # The latest partition's evaluation, with the worst meter ids as metadata (SPEC §6).
    browser.open(f"{webserver.url}/assets/scored_readings?view=checks&checkDetail=stuck_meters",
                 expect=["scored_readings", *CHECKS, "Passed", "worst_meter_ids", ingested[-1]])
    png = browser.screenshot(SCREENSHOTS / "scored-readings-checks.png")
    assert_real_screenshot(png)


def assert_real_screenshot(png: bytes) -> None:
    """A PNG of the whole viewport with enough detail to be a drawn page, not a blank one."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1400, 900)
    assert len(png) > 40_000, f"screenshot only {len(png)} bytes: a blank or loading page?"


def test_an_assets_overview_charts_its_metadata_as_the_readme_says(webserver, browser, ingested):
    # README: the Overview tab's Metadata section switches from Table to Plots.
    text = browser.open(f"{webserver.url}/assets/meter_readings?view=overview",
                        expect=["Overview", "Metadata", "Table", "Plots", "inserted"])
    assert "Partitions" in text
    png = browser.screenshot(SCREENSHOTS / "meter-readings-metadata.png")
    assert_real_screenshot(png)
