"""The embedded SeaweedFS has no unauthenticated path to the data (issue 8).

Every listener the running weed process holds — found from its sockets in
/proc, not from our own list of ports — is tried without credentials, as HTTP
(read, write, delete an object; the master's collection delete and write
assignment) and as gRPC (the filer's lookup and delete, the master's and
volume server's collection delete). All must fail and leave the bucket as it
was, while signed S3 requests work and a client holding the certificate
reaches the filer's gRPC (so the gRPC probes are real calls that can succeed).
"""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

import grpc
import pytest

from greenstream_dagster.services.embedded_s3_security import grpc_credentials

pytestmark = pytest.mark.services

DATA = os.urandom(64) + b"greenstream-secret-reading" + os.urandom(200_000)  # several volume writes' worth
KEY = "raw-data/2024-04-15/locked.csv"
TIMEOUT = 3


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def listening_tcp_ports(pid: int) -> list[int]:
    inodes = _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def listening_unix_sockets(pid: int) -> list[str]:
    inodes = _socket_inodes(pid)
    paths = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and fields[5] == "01":  # 01: listening
            paths.add(fields[7])
    return sorted(paths)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _message(**fields) -> bytes:
    """A protobuf message of string (by field number) and bool fields: f1="x", f4=True."""
    out = bytearray()
    for name, value in fields.items():
        number = int(name[1:])
        if isinstance(value, bool):
            out += _varint(number << 3) + _varint(int(value))
        else:
            data = value.encode()
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def _fields(data: bytes):
    """(number, value) of each field: bytes for length-delimited, int for varints."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, i = _read_varint(data, i)
        elif kind == 2:
            length, i = _read_varint(data, i)
            value, i = data[i:i + length], i + length
        elif kind == 1:
            value, i = data[i:i + 8], i + 8
        elif kind == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {kind}")
        yield number, value


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


GRPC_CALLS = [
    # (method, request): reads, writes and deletes of each service
    ("/filer_pb.SeaweedFiler/LookupDirectoryEntry", lambda bucket: _message(f1=f"/buckets/{bucket}/raw-data/2024-04-15", f2="locked.csv")),
    ("/filer_pb.SeaweedFiler/DeleteEntry", lambda bucket: _message(f1=f"/buckets/{bucket}/raw-data/2024-04-15", f2="locked.csv", f4=True)),
    ("/master_pb.Seaweed/CollectionDelete", lambda bucket: _message(f1=bucket)),
    ("/volume_server_pb.VolumeServer/DeleteCollection", lambda bucket: _message(f1=bucket)),
]


def _grpc_call(target: str, method: str, request: bytes, credentials=None) -> bytes:
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return call(request, timeout=TIMEOUT)


def _http(port: int | None, method: str, path: str, body: bytes | None = None, unix: str | None = None):
    """(status, body) or None when the listener does not speak HTTP/1.1."""
    if unix:
        conn = http.client.HTTPConnection("localhost", timeout=TIMEOUT)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.settimeout(TIMEOUT)
        conn.sock.connect(unix)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@pytest.fixture
def stored(s3_server, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=DATA)
    return s3_server, bucket


def _file_ids(target: str, bucket: str, credentials) -> list[str]:
    response = _grpc_call(target, GRPC_CALLS[0][0], GRPC_CALLS[0][1](bucket), credentials)
    entry = next(value for number, value in _fields(response) if number == 1)
    chunks = [value for number, value in _fields(entry) if number == 3]
    return [next(v for n, v in _fields(chunk) if n == 1).decode() for chunk in chunks]


def test_no_listener_serves_writes_or_deletes_the_data_without_credentials(stored, s3_client):
    server, bucket = stored
    pid = server._process.pid
    ports = listening_tcp_ports(pid)
    unix_sockets = listening_unix_sockets(pid)
    assert len(ports) >= 8, ports  # HTTP and gRPC of master, volume, filer and S3 gateway
    ca, cert, key = grpc_credentials(server.data_dir)
    trusted = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    file_ids = _file_ids(f"127.0.0.1:{server._ports.filer_grpc}", bucket, trusted)
    assert file_ids, "the trusted gRPC client sees the object's chunks"

    paths = [f"/buckets/{bucket}/{KEY}", f"/{bucket}/{KEY}", *(f"/{fid}" for fid in file_ids),
             *(f"/{fid.replace(',', '/')}" for fid in file_ids)]
    for target in [*(("tcp", port) for port in ports), *(("unix", path) for path in unix_sockets)]:
        port, unix = (target[1], None) if target[0] == "tcp" else (None, target[1])
        for path in paths:
            for method, body in (("GET", None), ("PUT", b"forged"), ("POST", b"forged"), ("DELETE", None)):
                answer = _http(port, method, path, body, unix)
                if answer is not None:
                    status, content = answer
                    assert status >= 400 or (method == "GET" and b"greenstream-secret-reading" not in content), \
                        (target, method, path, status, content[:200])
                    assert b"greenstream-secret-reading" not in content, (target, method, path)
        for path in (f"/col/delete?collection={bucket}", "/dir/assign", "/vol/vacuum", "/submit"):
            answer = _http(port, "GET", path, None, unix)
            assert answer is None or answer[0] >= 400, (target, path, answer)
        for action in ("ListUsers", "CreateUser&UserName=intruder", "CreateAccessKey&UserName=greenstream"):
            answer = _http(port, "POST", "/", f"Action={action}".encode(), unix)  # the gateway's IAM API
            name = action.split("&")[0].encode()
            assert answer is None or answer[0] >= 400 or (
                b"<" + name + b"Response" not in answer[1] and b"SecretAccessKey" not in answer[1]
            ), (target, action, answer)
        address = f"127.0.0.1:{port}" if port else f"unix:{unix}"
        for method, request in GRPC_CALLS:
            with pytest.raises(grpc.RpcError):
                _grpc_call(address, method, request(bucket))

    # Nothing was read, written or deleted: the signed S3 view is unchanged.
    assert s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == DATA
    keys = [item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [KEY]
    assert _file_ids(f"127.0.0.1:{server._ports.filer_grpc}", bucket, trusted) == file_ids


def test_signed_s3_requests_read_write_and_delete(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="a.csv", Body=DATA)
    assert s3_client.get_object(Bucket=bucket, Key="a.csv")["Body"].read() == DATA
    s3_client.delete_object(Bucket=bucket, Key="a.csv")
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_the_secrets_are_the_owners_alone(s3_server):
    folder = s3_server.data_dir / "security"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    for path in [*folder.iterdir(), s3_server.data_dir / "security.toml"]:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
