import hashlib

import polars as pl

from greenstream_dagster_tests.builders import one_row

SPEC_EXAMPLE = "SM-48291|2024-04-15T18:45:00Z|3250"


def test_spec_example_record_id_is_sha256_of_the_canonical_text():
    readings, _ = one_row("SM-48291,2024-04-15T18:45:00Z,3250,W")
    assert readings["record_id"][0] == hashlib.sha256(SPEC_EXAMPLE.encode()).hexdigest()
    assert readings["record_id"][0] == "b2e1285adc7d4f175659cd335e195a8f1a8154d33232668bdadb8224f00ece24"


def test_record_id_uses_utc_timestamp_and_trimmed_value_text():
    readings, _ = one_row("SM-48291, 2024-04-15 20:45:00+02:00 , 3250 ,W")
    assert readings["record_id"][0] == hashlib.sha256(SPEC_EXAMPLE.encode()).hexdigest()


def test_record_id_keeps_value_text_as_uploaded():
    readings, _ = one_row("SM-48291,2024-04-15T18:45:00Z,3250.0,W")
    text = "SM-48291|2024-04-15T18:45:00Z|3250.0"
    assert readings["record_id"][0] == hashlib.sha256(text.encode()).hexdigest()


def test_missing_value_hashes_as_empty_text():
    readings, _ = one_row("SM-48291,2024-04-15T18:45:00.75Z,,W")
    text = "SM-48291|2024-04-15T18:45:00Z|"
    assert readings["record_id"][0] == hashlib.sha256(text.encode()).hexdigest()
    assert readings["record_id"].str.contains("^[0-9a-f]{64}$").all()
    assert isinstance(readings, pl.DataFrame)
