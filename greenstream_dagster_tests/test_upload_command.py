"""`greenstream upload <folder>`: a local landing folder lands under the same keys."""

from __future__ import annotations

import argparse
import gzip
import uuid

import pytest

from greenstream_dagster import upload_command
from greenstream_dagster.storage.landing import read_object

CSV = b"meter_id,timestamp,value,unit\nSM-1,2024-04-15T00:00:00Z,1,kW\n"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="greenstream")
    upload_command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture
def landing_folder(tmp_path):
    files = {
        "raw-data/2024-04-15/a.csv": CSV,
        "raw-data/2024-04-15/region-2/b.csv.gz": gzip.compress(CSV),
        "raw-data/2024-04-16/c.csv": CSV,
        "raw-data/2024-04-16/readme.txt": b"not a landing file",
    }
    for key, data in files.items():
        path = tmp_path / "landing" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path / "landing", files


def _configure(monkeypatch, s3_env, tmp_path):
    for name, value in {**s3_env, "GREENSTREAM_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GREENSTREAM_DATABASE_URL", raising=False)


def _all_keys(client, bucket):
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_uploads_every_file_under_its_relative_key(monkeypatch, tmp_path, s3_env, s3_client, bucket, landing_folder, capsys):
    folder, files = landing_folder
    _configure(monkeypatch, s3_env, tmp_path)
    args = _parse(["upload", str(folder), "--workers", "4"])
    assert args.func(args) == 0
    assert _all_keys(s3_client, bucket) == sorted(files)
    for key, data in files.items():
        assert read_object(s3_client, bucket, key) == data  # gzip stays gzip
    out = capsys.readouterr()
    assert "uploaded 4 files" in out.out
    assert "raw-data/2024-04-16/readme.txt" in out.err  # warned: the platform will ignore it
    assert not (tmp_path / "data" / "postgres").exists()  # an upload needs no database


def test_the_raw_data_folder_itself_can_be_given(monkeypatch, tmp_path, s3_env, s3_client, bucket, landing_folder):
    folder, files = landing_folder
    _configure(monkeypatch, s3_env, tmp_path)
    args = _parse(["upload", str(folder / "raw-data")])
    assert args.func(args) == 0
    assert _all_keys(s3_client, bucket) == sorted(files)


def test_within_a_date_folder_later_keys_are_delivered_no_earlier(monkeypatch, tmp_path, s3_env, s3_client, bucket):
    day = tmp_path / "landing" / "raw-data" / "2024-04-15"
    day.mkdir(parents=True)
    names = [f"readings-{i:04d}.csv" for i in range(6)] + ["zz-revisions-0001.csv"]
    for name in names:
        (day / name).write_bytes(CSV * (2000 if name.startswith("readings") else 1))
    _configure(monkeypatch, s3_env, tmp_path)
    args = _parse(["upload", str(tmp_path / "landing")])
    assert args.func(args) == 0
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="raw-data/2024-04-15/")["Contents"]
    in_key_order = [item["LastModified"] for item in sorted(listed, key=lambda item: item["Key"])]
    assert in_key_order == sorted(in_key_order)


def test_a_missing_folder_is_an_error(monkeypatch, tmp_path, s3_env, capsys):
    _configure(monkeypatch, s3_env, tmp_path)
    args = _parse(["upload", str(tmp_path / "nowhere")])
    assert args.func(args) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err


def test_a_missing_bucket_is_named_and_not_created(monkeypatch, tmp_path, s3_env, s3_client, landing_folder, capsys):
    from greenstream_dagster.cli import main

    folder, _ = landing_folder
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    _configure(monkeypatch, {**s3_env, "GREENSTREAM_BUCKET": missing}, tmp_path)
    assert main(["upload", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"greenstream: configuration error: GREENSTREAM_BUCKET: bucket '{missing}' does not exist")
    assert err.count("\n") == 1
    assert missing not in {b["Name"] for b in s3_client.list_buckets()["Buckets"]}
