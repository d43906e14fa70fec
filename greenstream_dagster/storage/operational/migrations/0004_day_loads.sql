-- What the last load of each day left in meter_readings, so the next load of the day can
-- send PostgreSQL only the rows that changed (storage/operational/changed_rows.py).
-- `digest` names the digest object in staging (one 64-bit hash per reading), written
-- by the same load; `digest_format` says what computed its hashes (a newer Polars may
-- hash differently: then the next load compares in PostgreSQL instead).
CREATE TABLE day_loads (
    partition_date date        PRIMARY KEY,
    digest         text        NOT NULL,
    digest_format  text        NOT NULL,
    readings       bigint      NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now()
);
