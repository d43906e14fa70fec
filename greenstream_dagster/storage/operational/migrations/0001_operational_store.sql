-- Operational store (SPEC §5, §8).
--
-- Every table is partitioned BY RANGE (partition_date) with one partition per
-- UTC day, named <table>_pYYYYMMDD and created on demand (partitions.py).
-- 90-day retention drops whole day partitions of all four tables together
-- (retention.py): instant whatever the row count, and never a row DELETE.
-- There is no DEFAULT partition on purpose: a row for a day without its
-- partition is an error, not a silent catch-all that would block retention.

-- Scratch tables of a running load (load.py): UNLOGGED copies of the input,
-- kept out of the public schema so nobody mistakes them for data.
CREATE SCHEMA load_staging;

-- Every placeable, winning reading of a partition day, with its score.
CREATE TABLE meter_readings (
    record_id         text             NOT NULL,
    meter_id          text             NOT NULL,
    reading_ts        timestamptz      NOT NULL,
    partition_date    date             NOT NULL,
    value_raw         text,
    unit_raw          text,
    value_kw          double precision,
    tariff_period     text             NOT NULL,
    season            text             NOT NULL,
    validation_errors text[]           NOT NULL,
    out_of_range      boolean          NOT NULL,
    revised           boolean          NOT NULL,
    is_spike          boolean          NOT NULL,
    meter_stuck       boolean          NOT NULL,
    meter_gap         boolean          NOT NULL,
    quality_score     smallint         NOT NULL,
    quality_grade     text             NOT NULL,
    source_key        text             NOT NULL,
    source_line       bigint           NOT NULL,
    loaded_at         timestamptz      NOT NULL DEFAULT now(),
    -- The interval key is (meter_id, reading_ts). PostgreSQL requires a unique
    -- key of a partitioned table to contain the partition key, so partition_date
    -- is part of it; the CHECK below pins partition_date to the reading's UTC
    -- date, which makes (meter_id, reading_ts, partition_date) unique exactly
    -- when (meter_id, reading_ts) is.
    CONSTRAINT meter_readings_interval_key PRIMARY KEY (meter_id, reading_ts, partition_date),
    CONSTRAINT meter_readings_partition_is_utc_day
        CHECK (partition_date = (reading_ts AT TIME ZONE 'UTC')::date),
    CONSTRAINT meter_readings_quality_score CHECK (quality_score BETWEEN 0 AND 100),
    CONSTRAINT meter_readings_quality_grade CHECK (quality_grade IN ('A', 'B', 'C', 'F')),
    CONSTRAINT meter_readings_tariff_period CHECK (tariff_period IN ('PEAK', 'OFF_PEAK')),
    CONSTRAINT meter_readings_season CHECK (season IN ('WINTER', 'SPRING', 'SUMMER', 'AUTUMN')),
    CONSTRAINT meter_readings_validation_errors
        CHECK (validation_errors <@ ARRAY['INVALID_VALUE', 'UNIT_NOT_ALLOWED'])
) PARTITION BY RANGE (partition_date);

-- The quarantine: rows that could not be placed, one per physical row.
CREATE TABLE rejected_readings (
    partition_date date        NOT NULL,
    source_key     text        NOT NULL,
    source_line    bigint      NOT NULL,
    raw_line       text,
    reason         text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rejected_readings_row_key PRIMARY KEY (partition_date, source_key, source_line),
    CONSTRAINT rejected_readings_reason CHECK (reason IN (
        'MALFORMED_ROW', 'MISSING_METER_ID', 'INVALID_METER_ID',
        'MISSING_TIMESTAMP', 'INVALID_TIMESTAMP', 'TIMESTAMP_OUTSIDE_PARTITION'))
) PARTITION BY RANGE (partition_date);

-- Audit of superseded readings: one row per distinct losing record_id of an
-- interval key, so a revision delivered twice is still counted once.
CREATE TABLE reading_revisions (
    partition_date date        NOT NULL,
    meter_id       text        NOT NULL,
    reading_ts     timestamptz NOT NULL,
    record_id      text        NOT NULL,
    value_raw      text,
    unit_raw       text,
    source_key     text        NOT NULL,
    source_line    bigint      NOT NULL,
    superseded_by  text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reading_revisions_key PRIMARY KEY (partition_date, meter_id, reading_ts, record_id)
) PARTITION BY RANGE (partition_date);

-- Dead letters: a landing file that cannot be read as CSV (kind 'file', with
-- dead_letter_key: where its copy was kept in the bucket), or a
-- partition whose step failed after its retries (kind 'partition', asset_key
-- names the step). The replay job lists the open ones (replayed_at IS NULL)
-- and marks them replayed. They share the day partitions and the retention of
-- the data they belong to: a day older than the hot window is not reloaded.
CREATE TABLE dead_letter_files (
    dead_letter_id  bigint      GENERATED ALWAYS AS IDENTITY,
    partition_date  date        NOT NULL,
    kind            text        NOT NULL,
    source_key      text,
    etag            text,
    dead_letter_key text,
    asset_key       text,
    reason          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    run_id          text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    replay_run_id   text,
    CONSTRAINT dead_letter_files_key PRIMARY KEY (partition_date, dead_letter_id),
    CONSTRAINT dead_letter_files_kind CHECK (
        (kind = 'file' AND source_key IS NOT NULL)
        OR (kind = 'partition' AND source_key IS NULL AND etag IS NULL AND dead_letter_key IS NULL))
) PARTITION BY RANGE (partition_date);

-- One open dead letter per file version / failed step: recording it again
-- counts an attempt instead of adding a row.
CREATE UNIQUE INDEX dead_letter_files_open
    ON dead_letter_files (partition_date, kind, source_key, etag, asset_key) NULLS NOT DISTINCT
    WHERE replayed_at IS NULL;
