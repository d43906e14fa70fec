import hashlib

import polars as pl

from greenstream_dagster.rules.record_id import with_record_id
from greenstream_dagster_tests.builders import one_row

SPEC_EXAMPLE = "SM-48291|2024-04-15T18:45:00Z|3250"


def stored_ids(line: str) -> pl.Series:
    """record_id as the load derives it from a standardized reading of this CSV line."""
    readings, _ = one_row(line)
    return with_record_id(readings)["record_id"]


def test_spec_example_record_id_is_sha256_of_the_canonical_text():
    ids = stored_ids("SM-48291,2024-04-15T18:45:00Z,3250,W")
    assert ids[0] == hashlib.sha256(SPEC_EXAMPLE.encode()).hexdigest()
    assert ids[0] == "b2e1285adc7d4f175659cd335e195a8f1a8154d33232668bdadb8224f00ece24"


def test_record_id_uses_utc_timestamp_and_trimmed_value_text():
    assert stored_ids("SM-48291, 2024-04-15 20:45:00+02:00 , 3250 ,W")[0] == hashlib.sha256(SPEC_EXAMPLE.encode()).hexdigest()


def test_record_id_keeps_value_text_as_uploaded():
    text = "SM-48291|2024-04-15T18:45:00Z|3250.0"
    assert stored_ids("SM-48291,2024-04-15T18:45:00Z,3250.0,W")[0] == hashlib.sha256(text.encode()).hexdigest()


def test_missing_value_hashes_as_empty_text():
    ids = stored_ids("SM-48291,2024-04-15T18:45:00.75Z,,W")
    text = "SM-48291|2024-04-15T18:45:00Z|"
    assert ids[0] == hashlib.sha256(text.encode()).hexdigest()
    assert ids.str.contains("^[0-9a-f]{64}$").all()
