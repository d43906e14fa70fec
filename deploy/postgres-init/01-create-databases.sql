-- Runs once, on the first start with an empty data volume. POSTGRES_DB already
-- created `dagster` (Dagster's run, event-log and schedule storage); this adds
-- the operational store, whose tables the code location migrates itself.
CREATE DATABASE greenstream;
