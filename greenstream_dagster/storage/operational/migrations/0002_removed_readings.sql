-- Audit of readings a re-load removed (SPEC §5: a re-load never removes stored
-- readings silently). When a day is re-processed after landing objects were
-- removed — and the run was told to accept that — the readings no longer in
-- the input are deleted from meter_readings; each is kept here whole, with the
-- run that removed it, so the removal is counted, explained and reversible.
-- Not partitioned and not retained with the hot days: removals are rare and
-- their audit outlives the data.
CREATE TABLE removed_readings (
    partition_date date        NOT NULL,
    meter_id       text        NOT NULL,
    reading_ts     timestamptz NOT NULL,
    removed_at     timestamptz NOT NULL DEFAULT now(),
    removed_by_run text,
    reading        jsonb       NOT NULL
);

CREATE INDEX removed_readings_day ON removed_readings (partition_date, meter_id, reading_ts);
