-- Partitioned history, step 1 of 3 (issue 24): `events` becomes a table partitioned by month.
-- Ids are UUIDv7, whose first 48 bits are the Unix time in milliseconds: a month's ids are
-- one range of uuids, so the table is partitioned by RANGE (id) and keeps `id` as its whole
-- primary key (the webhook deliveries' foreign key stays as it is).
--
-- The rows already there become one partition, `events_before`, of every id before the
-- first whole month. Attaching it skips the scan of the table only when a validated CHECK
-- constraint already proves its bound; adding it NOT VALID here takes a moment's lock, and
-- the next step validates it without blocking writes.

-- The lowest UUIDv7 of instant `at` (its millisecond, every other bit zero).
CREATE FUNCTION uuid_v7_floor(at timestamptz) RETURNS uuid LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;

-- The first instant of the UTC calendar month `months` after the one `at` falls in.
CREATE FUNCTION utc_month(at timestamptz, months integer DEFAULT 0) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (date_trunc('month', at AT TIME ZONE 'UTC') + make_interval(months => months))
           AT TIME ZONE 'UTC'
$$;

DO $$
BEGIN
    EXECUTE format('ALTER TABLE events ADD CONSTRAINT events_before_bound CHECK (id < %L) NOT VALID',
                   uuid_v7_floor(utc_month(now(), 1)));
END
$$;
