"""No unauthenticated path to the embedded S3's data (issue 8): weed's `security.toml`.

A `weed server` opens eight TCP ports on loopback, and loopback is not a wall:
every local user, and every web page in a local browser (a GET or a form POST
needs no CORS), reaches them. Only the S3 gateway checks signatures. So:

- filer HTTP (serves, writes and deletes bucket objects with no credentials):
  switched off (`-filer.disableHttp`); the S3 gateway talks to the filer over gRPC.
- master HTTP API (`/col/delete?collection=<bucket>` drops a bucket's volumes on a
  plain GET; `/dir/assign` hands out write tokens): switched off (`-disableHttp`);
  only its status page and `/cluster/status` remain, which hold no data.
- volume HTTP (objects' chunks by file id; direct writes and deletes): every read
  and write needs a JWT signed with keys only this process knows (`jwt.signing`,
  `jwt.signing.read`); the gateway and filer sign their own.
- gRPC of master, volume, filer and S3 gateway (metadata, deletes, needle reads,
  on TCP and on weed's Unix sockets): mutual TLS (`[grpc]`), with a CA and one
  certificate made here; a client without that certificate fails the handshake.
- volume UI, Iceberg and Lance listeners, debug/pprof and metrics ports: off
  (`[access] ui = false`; the others are not opened by `_command`).

The keys, CA and certificate live in `<data_dir>/security/` (mode 0700, files
0600), made once and reused by later starts, so only the data folder's owner
(who can read the volumes anyway) holds them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

FOLDER = "security"
CONFIG_NAME = "security.toml"  # weed reads it from -config_dir
_KEYS = ("jwt_write", "jwt_read")
_CERT_DAYS = 3650
_GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "client")


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key(folder: Path, name: str) -> str:
    path = folder / name
    if not path.exists():
        _private(path, secrets.token_hex(32).encode())
    return path.read_text().strip()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(ca, cert, key): a CA and one certificate for every component, both ways (mTLS)."""
    ca_path, cert_path, key_path = folder / "ca.crt", folder / "weed.crt", folder / "weed.key"
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return ca_path, cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "greenstream embedded S3 CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=_CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "greenstream-weed")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _private(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _private(cert_path, cert.public_bytes(pem))
    _private(ca_path, ca.public_bytes(pem))  # written last: its presence means the set is whole
    return ca_path, cert_path, key_path


def _toml(path: Path) -> str:
    return json.dumps(str(path))  # a JSON string is a TOML basic string


def write_security_config(data_dir: Path) -> Path:
    """Write `<data_dir>/security.toml` (keys and certificates made on first use); return its path."""
    folder = data_dir / FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    write_key, read_key = (_key(folder, name) for name in _KEYS)
    ca, cert, key = _certificates(folder)
    # Tokens live 60 s (weed's default is 10): a chunk write on a busy two-core machine can
    # start more than 10 s after its assignment; they only ever reach weed's own components.
    lines = [
        "[jwt.signing]", f'key = "{write_key}"', "expires_after_seconds = 60",
        "[jwt.signing.read]", f'key = "{read_key}"', "expires_after_seconds = 60",
        "[access]", "ui = false",
        "[grpc]", f"ca = {_toml(ca)}",
    ]
    for component in _GRPC_COMPONENTS:
        lines += [f"[grpc.{component}]", f"cert = {_toml(cert)}", f"key = {_toml(key)}"]
    path = data_dir / CONFIG_NAME
    _private(path, ("\n".join(lines) + "\n").encode())
    return path


def grpc_credentials(data_dir: Path) -> tuple[bytes, bytes, bytes]:
    """(ca, cert, key) PEM bytes, for a trusted client of the embedded server's gRPC (tests)."""
    folder = data_dir / FOLDER
    return tuple((folder / name).read_bytes() for name in ("ca.crt", "weed.crt", "weed.key"))
