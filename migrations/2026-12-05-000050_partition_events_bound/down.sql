ALTER TABLE events DROP CONSTRAINT IF EXISTS events_before_bound;
DROP FUNCTION utc_month(timestamptz, integer);
DROP FUNCTION uuid_v7_floor(timestamptz);
