-- Partitioned history: `audit_events` by month, as `events` (migrations 000050 to 000053;
-- src/db/partitions.rs). Step 1: the bound of the rows already there, NOT VALID.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE audit_events ADD CONSTRAINT audit_events_before_bound CHECK (id < %L) NOT VALID',
                   uuid_v7_floor(utc_month(now(), 1)));
END
$$;
