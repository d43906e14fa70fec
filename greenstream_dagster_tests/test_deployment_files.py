"""The deployment files (SPEC §6, §7, §8): instances, workspaces, the compose stack, the image.

No Docker engine runs here: the files are parsed and checked against each other,
and the instance files are validated by Dagster's own instance schema.
"""

from __future__ import annotations

import functools
import importlib
import json
import posixpath
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster._serdes.config_class import ConfigurableClassData

from greenstream_dagster.defs.executor import docker_executor_config, executor_for
from greenstream_dagster.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
LOCAL_INSTANCE = ROOT / "dagster.yaml"
COMPOSE_INSTANCE = ROOT / "deploy" / "dagster.docker.yaml"
DEFINITIONS_MODULE = "greenstream_dagster.definitions"

# SPEC §8; DAGSTER_HOME is the image's (checked with the Dockerfile).
SPEC_ENVIRONMENT = (
    "GREENSTREAM_S3_ENDPOINT_URL", "GREENSTREAM_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION", "GREENSTREAM_DATABASE_URL", "GREENSTREAM_PARTITIONS_START", "GREENSTREAM_TIMEZONE",
)
DAGSTER_SERVICES = ("user_code", "webserver", "daemon")
DAY_TAG = "greenstream/day"  # set on every run by the coordinator (instance/run_queue.py)


# ---------------------------------------------------------------- reading the files

def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


@functools.cache
def _compose() -> dict:
    return _yaml(ROOT / "docker-compose.yml")


def _service(name: str) -> dict:
    return _compose()["services"][name]


_SUBSTITUTION = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def _interpolate(value: str, env: dict | None = None) -> str:
    """Compose's `${VAR:-default}` substitution, against `env` (default: nothing set)."""
    env = env or {}

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(3)
        return env.get(name) or match.group(2) or ""

    return _SUBSTITUTION.sub(substitute, str(value))


def _environment(name: str) -> dict[str, str]:
    """A service's environment as compose writes it, before substitution."""
    env = _service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _resolved_environment(name: str) -> dict[str, str]:
    return {key: _interpolate(value) for key, value in _environment(name).items()}


def _command(name: str) -> list[str]:
    command = _service(name).get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(command: list[str], *flags: str) -> str | None:
    for i, part in enumerate(command[:-1]):
        if part in flags:
            return command[i + 1]
    return None


def _depends_on(name: str) -> dict[str, str]:
    """{service: condition}; the short list form means service_started."""
    depends = _service(name).get("depends_on") or {}
    if isinstance(depends, list):
        return {other: "service_started" for other in depends}
    return {other: (spec or {}).get("condition", "service_started") for other, spec in depends.items()}


def _volume_mounts(name: str) -> dict[str, str]:
    """{container path: source} of a service's volumes (short syntax)."""
    mounts = {}
    for volume in _service(name).get("volumes") or []:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


@functools.cache
def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _dockerfile_copies() -> list[tuple[list[str], str]]:
    copies = []
    for keyword, arguments in _dockerfile():
        if keyword == "COPY":
            parts = [part for part in shlex.split(arguments) if not part.startswith("--")]
            copies.append((parts[:-1], parts[-1]))
    return copies


def _image_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in _dockerfile():
        if keyword == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(arguments))
    return env


def _image_file(container_path: str) -> Path:
    """The repository file the Dockerfile copies to `container_path`."""
    for sources, raw_destination in _dockerfile_copies():
        destination = _interpolate(raw_destination, _image_env())
        for source in sources:
            if destination == container_path or (
                destination.endswith("/") and destination + Path(source).name == container_path
            ):
                return ROOT / source
    raise AssertionError(f"the Dockerfile copies nothing to {container_path}")


def _env_names(config) -> set[str]:
    """Every `{env: NAME}` in an instance config."""
    if isinstance(config, dict):
        if set(config) == {"env"}:
            return {config["env"]}
        return set().union(*(_env_names(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(_env_names(value) for value in config))
    return set()


def _compose_launcher() -> dict:
    return _yaml(COMPOSE_INSTANCE)["run_launcher"]


# ---------------------------------------------------------------- the compose stack

def test_compose_runs_postgresql_s3_the_code_server_webserver_and_daemon():
    assert {"postgresql", "dagster_postgresql", "s3", "s3-init", "user_code", "webserver", "daemon"} <= set(
        _compose()["services"]
    )


@pytest.mark.parametrize("server", ["postgresql", "dagster_postgresql"])
def test_postgresql_is_health_checked_and_every_dagster_service_waits_for_it(server):
    check = _service(server)["healthcheck"]["test"]
    assert "pg_isready" in " ".join(check)
    for name in DAGSTER_SERVICES:
        assert _depends_on(name).get(server) == "service_healthy", name


def _created_databases(server: str) -> set[str]:
    env = _resolved_environment(server)
    created = {env["POSTGRES_DB"]}
    for target, source in _volume_mounts(server).items():
        if target == "/docker-entrypoint-initdb.d":
            for script in (ROOT / source).glob("*.sql"):
                created |= set(re.findall(r"CREATE DATABASE\s+(\w+)", script.read_text(), re.IGNORECASE))
    return created


def test_dagster_storage_and_the_operational_store_are_databases_of_two_servers():
    """An outage of the operational store must leave Dagster's bookkeeping (the retries' own
    event-log writes) running: the two URLs name different servers, each creating its database."""
    for name in DAGSTER_SERVICES:
        env = _resolved_environment(name)
        for variable, server, database in (("DAGSTER_POSTGRES_URL", "dagster_postgresql", "dagster"),
                                           ("GREENSTREAM_DATABASE_URL", "postgresql", "greenstream")):
            url = urlparse(env[variable])
            server_env = _resolved_environment(server)
            assert (url.hostname, url.port or 5432) == (server, 5432), (name, variable)
            assert url.path.lstrip("/") == database, (name, variable)
            assert database in _created_databases(server), (server, database)
            assert (url.username, url.password) == (
                server_env["POSTGRES_USER"], server_env["POSTGRES_PASSWORD"]
            ), (name, variable)
    operational_volume = _volume_mounts("postgresql")["/var/lib/postgresql/data"]
    dagster_volume = _volume_mounts("dagster_postgresql")["/var/lib/postgresql/data"]
    assert operational_volume != dagster_volume


def test_s3_is_minio_health_checked_and_the_bucket_exists_before_the_code_server_starts():
    s3 = _service("s3")
    assert "healthcheck" in s3
    assert _depends_on("s3-init") == {"s3": "service_healthy"}
    assert _depends_on("user_code").get("s3-init") == "service_completed_successfully"
    minio = _resolved_environment("s3")
    bucket_made = _interpolate(" ".join(_command("s3-init")))
    for name in DAGSTER_SERVICES:
        env = _resolved_environment(name)
        endpoint = urlparse(env["GREENSTREAM_S3_ENDPOINT_URL"])
        assert (endpoint.hostname, endpoint.port) == ("s3", 9000), name
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
            minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]
        ), name
        assert f"/{env['GREENSTREAM_BUCKET']}" in bucket_made, name


def test_published_ports_listen_on_loopback_only():
    published = {}
    for name, service in _compose()["services"].items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip, container = port.get("host_ip"), str(port["target"])
            else:
                parts = str(port).split(":")
                host_ip, container = (parts[0] if len(parts) == 3 else None), parts[-1]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond localhost"
            published.setdefault(name, set()).add(container)
    assert "3000" in published.get("webserver", set())


def test_passwords_are_local_defaults_the_environment_overrides():
    secret_values = {
        "postgresql": ["POSTGRES_PASSWORD"],
        "dagster_postgresql": ["POSTGRES_PASSWORD"],
        "s3": ["MINIO_ROOT_PASSWORD"],
        **{name: ["AWS_SECRET_ACCESS_KEY", "DAGSTER_POSTGRES_URL", "GREENSTREAM_DATABASE_URL"]
           for name in DAGSTER_SERVICES},
    }
    override = {"POSTGRES_PASSWORD": "from-the-shell", "MINIO_ROOT_PASSWORD": "from-the-shell"}
    for name, variables in secret_values.items():
        for variable in variables:
            assert "from-the-shell" in _interpolate(_environment(name)[variable], override), (name, variable)


def test_every_dagster_service_gets_the_spec_environment_and_the_instance_url():
    for name in DAGSTER_SERVICES:
        env = _resolved_environment(name)
        missing = {*SPEC_ENVIRONMENT, "DAGSTER_POSTGRES_URL"} - {key for key, value in env.items() if value}
        assert not missing, f"{name} lacks {sorted(missing)}"
        settings = load_settings(env)  # the project's own validation of every value
        assert settings.s3_endpoint_url and settings.database_url, name


def test_the_compose_instance_reads_only_variables_every_dagster_service_has():
    names = _env_names(_yaml(COMPOSE_INSTANCE))
    assert "DAGSTER_POSTGRES_URL" in names
    for name in DAGSTER_SERVICES:
        assert names <= set(_environment(name)), f"{name} lacks {sorted(names - set(_environment(name)))}"


def test_user_code_serves_the_definitions_module_from_its_own_image():
    command = _command("user_code")
    assert _option(command, "-m", "--module-name") == DEFINITIONS_MODULE
    assert _option(command, "-h", "--host") == "0.0.0.0"
    image = _service("user_code")["image"]
    assert _environment("user_code")["DAGSTER_CURRENT_IMAGE"] == image
    for name in DAGSTER_SERVICES:
        assert _service(name)["image"] == image and _service(name)["build"]["dockerfile"] == "Dockerfile", name


def test_webserver_and_daemon_load_the_code_location_from_the_user_code_server():
    user_code = _command("user_code")
    workspaces = {_option(_command(name), "-w", "--workspace") for name in ("webserver", "daemon")}
    assert len(workspaces) == 1 and None not in workspaces
    workspace = _yaml(_image_file(workspaces.pop()))
    [location] = workspace["load_from"]
    server = location["grpc_server"]
    assert server["host"] == "user_code"
    assert str(server["port"]) == _option(user_code, "-p", "--port")
    assert server["location_name"] == _option(user_code, "--location-name")
    for name in ("webserver", "daemon"):
        assert "user_code" in _depends_on(name), name


def test_compose_runs_each_run_in_a_container_on_the_stack_network():
    launcher = _compose_launcher()
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    network = launcher["config"]["network"]
    [key] = [key for key, spec in _compose()["networks"].items() if (spec or {}).get("name") == network]
    for name in ("postgresql", "dagster_postgresql", "s3", *DAGSTER_SERVICES):
        assert key in _service(name)["networks"], name
    for name in ("webserver", "daemon"):  # the launcher drives the host's Docker from these
        assert _volume_mounts(name).get("/var/run/docker.sock") == "/var/run/docker.sock", name


def test_runs_get_the_code_servers_environment_from_the_daemon():
    forwarded = _compose_launcher()["config"]["env_vars"]
    names = {entry.split("=", 1)[0] for entry in forwarded}
    # A run reloads the definitions, so it needs what the code server was given.
    assert set(_environment("user_code")) - {"DAGSTER_CURRENT_IMAGE"} <= names
    # A bare name is read from the daemon's environment; one missing there fails every launch.
    daemon = _environment("daemon")
    assert all(entry in daemon for entry in forwarded if "=" not in entry)


def _launcher_mounts() -> dict[str, str]:
    """{container path: source} of the run containers' volumes."""
    return {target: source for source, target in
            (mount.split(":")[:2] for mount in _compose_launcher()["config"]["container_kwargs"]["volumes"])}


def test_run_containers_write_compute_logs_where_the_webserver_reads_them():
    path = f"{_image_env()['DAGSTER_HOME']}/storage"  # Dagster's local compute log folder
    volume = _launcher_mounts()[path]
    [key] = [key for key, spec in _compose()["volumes"].items() if (spec or {}).get("name") == volume]
    assert _volume_mounts("webserver").get(path) == key


# ---------------------------------------------------------------- the steps of a run (SPEC §10)

def _run_container_environment() -> dict[str, str]:
    """What a run's container is given: the launcher's variables, read from the daemon's environment."""
    daemon = _resolved_environment("daemon")
    return dict(entry.split("=", 1) if "=" in entry else (entry, daemon[entry])
                for entry in _compose_launcher()["config"]["env_vars"])


def test_compose_runs_the_steps_of_a_run_on_the_docker_executor():
    for name in DAGSTER_SERVICES:
        assert _resolved_environment(name)["GREENSTREAM_EXECUTOR"] == "docker", name
    # The run's container loads the definitions and with them the executor of its steps.
    settings = load_settings(_run_container_environment())
    assert settings.executor == "docker"
    assert executor_for(settings, _run_container_environment()).name == "docker"
    # ... and starts its steps' containers through the host's Docker.
    assert _launcher_mounts().get("/var/run/docker.sock") == "/var/run/docker.sock"


def test_step_containers_join_the_stack_network_once_with_the_runs_settings():
    """What Dagster gives each step container: the DockerRunLauncher's context merged with the
    executor's (dagster_docker's own merge). The network must be the stack's, named once: Docker
    refuses to attach a container twice to one network."""
    from dagster_docker.container_context import DockerContainerContext

    launcher = _compose_launcher()["config"]
    run_env = _run_container_environment()
    config = docker_executor_config(load_settings(run_env), run_env)
    merged = DockerContainerContext(
        env_vars=launcher["env_vars"], networks=[launcher["network"]], container_kwargs=launcher["container_kwargs"],
    ).merge(DockerContainerContext(
        env_vars=config.get("env_vars"), networks=[config["network"]] if "network" in config else config.get("networks"),
        container_kwargs=config.get("container_kwargs"),
    ))
    [network] = merged.networks
    assert any((spec or {}).get("name") == network for spec in _compose()["networks"].values())
    step_env = {entry.split("=", 1)[0] for entry in merged.env_vars}
    assert set(_environment("user_code")) - {"DAGSTER_CURRENT_IMAGE"} <= step_env  # a step loads the definitions too
    assert f"{_image_env()['DAGSTER_HOME']}/storage" in {mount.split(":")[1] for mount in merged.container_kwargs["volumes"]}


# ---------------------------------------------------------------- the instances

STORAGE_SECTIONS = ("run_storage", "event_log_storage", "schedule_storage")

@pytest.mark.parametrize("path", [LOCAL_INSTANCE, COMPOSE_INSTANCE], ids=lambda path: path.name)
def test_instance_file_validates_against_dagsters_schema(path):
    config, _ = dagster_instance_config(str(path.parent), path.name)
    # Rehydrating imports each class and validates the config against the class's own schema.
    built = {
        section: ConfigurableClassData(
            config[section]["module"], config[section]["class"], yaml.safe_dump(config[section].get("config") or {})
        ).rehydrate()
        for section in ("run_coordinator", "run_launcher")
    }
    for section in STORAGE_SECTIONS:  # validated without connecting: the class's schema, the env source unread
        entry = config[section]
        storage_class = getattr(importlib.import_module(entry["module"]), entry["class"])
        assert validate_config(storage_class.config_type(), entry["config"]).success, section
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"]
    if monitoring.get("max_resume_run_attempts", 0):
        assert built["run_launcher"].supports_resume_run  # else the instance refuses to start


def test_local_instance_stores_in_postgres_and_queues_one_run_per_partition():
    config = _yaml(LOCAL_INSTANCE)
    assert "storage" not in config
    for section, kind in zip(STORAGE_SECTIONS, ("Run", "EventLog", "Schedule")):
        assert config[section] == {"module": "greenstream_dagster.instance.storage",
                                   "class": f"PooledPostgres{kind}Storage",
                                   "config": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    coordinator = config["run_coordinator"]
    assert (coordinator["module"], coordinator["class"]) == ("greenstream_dagster.instance.run_queue", "DayQueuedRunCoordinator")
    assert coordinator["config"]["max_concurrent_runs"] >= 1
    per_partition = [
        limit for limit in coordinator["config"]["tag_concurrency_limits"] if limit["key"] == DAY_TAG
    ]
    assert per_partition == [{"key": DAY_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert config["run_launcher"]["class"] == "DefaultRunLauncher"
    assert config["telemetry"] == {"enabled": False}
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] == 0


def test_compose_instance_differs_from_the_local_one_only_in_the_run_launcher():
    local, compose = _yaml(LOCAL_INSTANCE), _yaml(COMPOSE_INSTANCE)
    assert local.keys() == compose.keys()
    assert {key: value for key, value in local.items() if key != "run_launcher"} == {
        key: value for key, value in compose.items() if key != "run_launcher"
    }


@pytest.mark.parametrize("path", [ROOT / "workspace.yaml", ROOT / "deploy" / "workspace.docker.yaml"],
                         ids=lambda path: path.name)
def test_workspace_file_validates_against_dagsters_schema(path):
    ensure_workspace_config(_yaml(path), str(path))


def test_repo_workspace_loads_the_definitions_module():
    [location] = _yaml(ROOT / "workspace.yaml")["load_from"]
    assert location["python_module"]["module_name"] == DEFINITIONS_MODULE


# ---------------------------------------------------------------- the image

def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _installed_project_sources() -> set[str]:
    """What the folder held when the image last pip-installed the project (empty: never).

    Follows the Dockerfile in order: COPY fills folders, `rm -rf` empties them,
    `pip install <folder>` installs what is there, `pip uninstall` undoes it.
    """
    workdir = "/"
    folders: dict[str, set[str]] = {}
    installed: set[str] = set()

    def absolute(path: str) -> str:
        return posixpath.normpath(posixpath.join(workdir, path))

    for keyword, arguments in _dockerfile():
        if keyword == "WORKDIR":
            workdir = absolute(arguments)
        elif keyword == "COPY":
            parts = [part for part in shlex.split(arguments) if not part.startswith("--")]
            sources, destination = parts[:-1], absolute(parts[-1])
            if parts[-1].endswith("/") or parts[-1] == "." or len(sources) > 1:
                folders.setdefault(destination, set()).update(Path(source).name for source in sources)
            else:
                folder, name = posixpath.split(destination)
                folders.setdefault(folder, set()).add(name)
        elif keyword == "RUN":
            for command in (shlex.split(part) for part in arguments.split("&&")):
                if command[:2] == ["rm", "-rf"]:
                    for target in command[2:]:
                        folders.pop(absolute(target), None)
                elif command[:2] == ["pip", "install"]:
                    targets = [absolute(arg) for arg in command[2:] if not arg.startswith("-")]
                    installed = set().union(*(folders.get(target, set()) for target in targets))
                elif command[:2] == ["pip", "uninstall"] and "greenstream-dagster" in command:
                    installed = set()
    return installed


def test_image_is_python_3_11_and_pip_installs_the_project():
    [base] = [arguments for keyword, arguments in _dockerfile() if keyword == "FROM"]
    assert re.fullmatch(r"python:3\.11(-[\w.-]+)?", base.split()[0])
    assert {"pyproject.toml", "greenstream_dagster"} <= _installed_project_sources()


def test_image_holds_the_compose_instance_in_dagster_home_and_serves_the_definitions():
    home = _image_env()["DAGSTER_HOME"]
    assert _image_file(f"{home}/dagster.yaml") == COMPOSE_INSTANCE
    [cmd] = [arguments for keyword, arguments in _dockerfile() if keyword == "CMD"]
    assert _option(json.loads(cmd), "-m", "--module-name") == DEFINITIONS_MODULE
    for name in DAGSTER_SERVICES:  # the image's DAGSTER_HOME is where the instance file is
        assert "DAGSTER_HOME" not in _environment(name), name


def test_every_module_an_instance_names_is_a_project_dependency():
    dependencies = {
        re.split(r"[\[=<>~! ;]", requirement, maxsplit=1)[0].lower()
        for requirement in _pyproject()["project"]["dependencies"]
    }
    for path in (LOCAL_INSTANCE, COMPOSE_INSTANCE):
        for section in _yaml(path).values():
            if isinstance(section, dict) and "module" in section:
                if section["module"].startswith("greenstream_dagster."):  # the project itself (run_queue)
                    importlib.import_module(section["module"])
                    continue
                distribution = section["module"].split(".")[0].replace("_", "-")
                assert distribution in dependencies, f"{path.name}: {section['module']}"


def test_pip_install_ships_every_data_file_of_the_package():
    """The image runs the installed package: a file setuptools leaves out is missing there."""
    package_data = _pyproject().get("tool", {}).get("setuptools", {}).get("package-data", {})
    packages = [path.parent for path in (ROOT / "greenstream_dagster").rglob("__init__.py")]
    shipped = set()
    for package, patterns in package_data.items():
        # setuptools' own reading: globs relative to the package's folder; "*" means every package.
        folders = packages if package == "*" else [ROOT / package.replace(".", "/")]
        for folder in folders:
            for pattern in patterns:
                shipped |= set(folder.glob(pattern))
    data_files = {
        path for path in (ROOT / "greenstream_dagster").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    unshipped = sorted(path.relative_to(ROOT).as_posix() for path in data_files - shipped)
    assert not unshipped, f"pyproject [tool.setuptools.package-data] leaves out {unshipped}"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".greenstream", ".git", ".env"} <= ignored
