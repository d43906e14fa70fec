"""The embedded S3 server (SPEC §7): loopback only, signed requests, data reused across starts."""

from __future__ import annotations

import json
import os

import botocore.exceptions
import pytest

from greenstream_dagster.services import embedded_s3
from greenstream_dagster.services.embedded_s3 import EmbeddedS3, EmbeddedS3Error
from greenstream_dagster.storage.s3 import make_s3_client

pytestmark = pytest.mark.services


def _client(endpoint: str, secret: str = embedded_s3.SECRET_ACCESS_KEY):
    return make_s3_client(endpoint, embedded_s3.ACCESS_KEY_ID, secret, embedded_s3.REGION, max_attempts=1)


def _listening_ports(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets `pid` listens on, from /proc (no external tools)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    address, port = local.split(":")
                    listening.add((address, int(port, 16)))
    return listening


def test_serves_signed_requests_on_loopback(s3_server, s3_client):
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    s3_client.list_buckets()  # signed with the fixed local identity


def test_refuses_a_wrong_secret(s3_endpoint_url):
    with pytest.raises(botocore.exceptions.ClientError) as error:
        _client(s3_endpoint_url, secret="not-the-secret").list_buckets()
    assert error.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_listens_only_on_loopback_and_only_on_the_picked_ports(s3_server):
    listening = _listening_ports(s3_server._process.pid)
    picked = set(json.loads((s3_server.data_dir / "ports.json").read_text()).values())
    assert listening, "weed listens on nothing?"
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert {address for address, _ in listening} == {loopback}
    assert {port for _, port in listening} == picked  # no Iceberg, Lance, debug or metrics listener


def test_keeps_its_log_in_the_data_folder(s3_server):
    assert s3_server.log_path.parent == s3_server.data_dir
    assert s3_server.log_path.stat().st_size > 0


def test_stop_ends_the_process_and_a_second_start_reuses_the_data(tmp_path):
    server = EmbeddedS3(tmp_path)
    client = _client(server.start())
    client.create_bucket(Bucket="kept")
    client.put_object(Bucket="kept", Key="raw-data/2024-04-15/a.csv", Body=b"meter_id\n")
    process, ports = server._process, server._ports
    server.stop()
    assert process.poll() is not None
    assert not (tmp_path / "weed.pid").exists()
    sockets = [f"/tmp/seaweedfs-{name}-grpc-{port}.sock" for name, port in ports.grpc().items()]
    assert not [path for path in sockets if os.path.exists(path)]

    with EmbeddedS3(tmp_path) as again:
        body = _client(again.endpoint_url).get_object(Bucket="kept", Key="raw-data/2024-04-15/a.csv")["Body"]
        assert body.read() == b"meter_id\n"


def test_a_server_already_running_on_the_folder_is_reused_and_left_running(s3_server):
    other = EmbeddedS3(s3_server.data_dir)
    assert other.start() == s3_server.endpoint_url
    assert not other.started_here
    other.stop()
    _client(s3_server.endpoint_url).list_buckets()  # still serving


def test_a_requested_port_that_is_taken_is_an_error_naming_it(s3_server, tmp_path):
    taken = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    with pytest.raises(EmbeddedS3Error, match=str(taken)):
        EmbeddedS3(tmp_path, port=taken).start()
