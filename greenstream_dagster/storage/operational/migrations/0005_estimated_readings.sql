-- Estimates of short gaps (SPEC §3b, VEE): a flagged value for a slot the meter sent nothing
-- for, interpolated between two usable readings. Kept apart from meter_readings so they
-- never feed the fault statistics, the gap rule or the grades. Partitioned and retained like
-- meter_readings (one partition per UTC day, dropped by the retention with the others).
CREATE TABLE estimated_readings (
    partition_date  date             NOT NULL,
    meter_id        text             NOT NULL,
    slot_ts         timestamptz      NOT NULL,
    value_kw        double precision NOT NULL,
    method          text             NOT NULL,
    from_reading_ts timestamptz      NOT NULL,  -- the bounding usable readings (meter_readings.reading_ts)
    to_reading_ts   timestamptz      NOT NULL,
    estimated_at    timestamptz      NOT NULL DEFAULT now(),  -- moves only when the estimate changes
    -- One estimate per slot; partition_date completes the key as in meter_readings.
    CONSTRAINT estimated_readings_slot_key PRIMARY KEY (meter_id, slot_ts, partition_date),
    CONSTRAINT estimated_readings_partition_is_utc_day
        CHECK (partition_date = (slot_ts AT TIME ZONE 'UTC')::date),
    CONSTRAINT estimated_readings_method CHECK (method IN ('LINEAR')),
    CONSTRAINT estimated_readings_between_bounds CHECK (from_reading_ts < slot_ts AND slot_ts < to_reading_ts)
) PARTITION BY RANGE (partition_date);
