-- The fleet (SPEC §3a): which meters exist, which were seen each day, which went silent.

-- Presence: one row per meter with a placeable row on a materialized day, and the
-- time of its last reading that day. The registry and the silent meters are
-- functions of it. Partitioned and retained like meter_readings.
CREATE TABLE meter_presence (
    partition_date  date        NOT NULL,
    meter_id        text        NOT NULL,
    last_reading_ts timestamptz NOT NULL,
    CONSTRAINT meter_presence_key PRIMARY KEY (partition_date, meter_id),
    CONSTRAINT meter_presence_reading_on_day
        CHECK (partition_date = (last_reading_ts AT TIME ZONE 'UTC')::date)
) PARTITION BY RANGE (partition_date);
CREATE INDEX meter_presence_meter ON meter_presence (meter_id, partition_date);

-- The meter registry: every meter ever seen, one row each, kept beyond the hot
-- window (a meter is not forgotten when its oldest days are dropped).
CREATE TABLE meters (
    meter_id        text        PRIMARY KEY,
    first_seen      date        NOT NULL,
    last_seen       date        NOT NULL,
    last_reading_ts timestamptz NOT NULL,
    days_seen       integer     NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meters_seen_in_order CHECK (first_seen <= last_seen),
    CONSTRAINT meters_days_seen CHECK (days_seen >= 1 AND days_seen <= last_seen - first_seen + 1)
);

-- Silent meters: one row per meter and day it was silent on.
CREATE TABLE silent_meters (
    partition_date date        NOT NULL,
    meter_id       text        NOT NULL,
    last_seen      date        NOT NULL,
    silent_days    integer     NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT silent_meters_key PRIMARY KEY (partition_date, meter_id),
    CONSTRAINT silent_meters_days CHECK (silent_days = partition_date - last_seen AND silent_days >= 1)
) PARTITION BY RANGE (partition_date);
CREATE INDEX silent_meters_meter ON silent_meters (meter_id, partition_date);

-- Days whose presence was recorded (a day without meters has no presence rows,
-- yet it was materialized): the silent-meter step tells a quiet look-back day
-- from one not processed yet.
CREATE TABLE fleet_days (
    partition_date  date        PRIMARY KEY,
    meters          integer     NOT NULL,
    materialized_at timestamptz NOT NULL DEFAULT now()
);
