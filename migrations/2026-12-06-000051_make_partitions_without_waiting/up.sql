-- Making partitions ahead no longer waits behind long transactions or stops the table.
--
-- Creating a partition locks its parent ACCESS EXCLUSIVE. The first version tried every month
-- whose partition was not found by name, so the months `<parent>_before` covers were tried, and
-- refused, at every call (at startup and hourly): each time the service queued for that lock
-- behind any open transaction that had written to the table, and every read and write of the
-- table queued behind it until that transaction ended (the feed, the webhooks, every change
-- that writes an event). Now a month is skipped when an existing partition's bounds cover it,
-- read from the catalog without locking the parent; and a month that is due waits at most
-- 500 ms for the lock, then is left for the next call (months are made three ahead).
CREATE OR REPLACE FUNCTION rapport_make_partitions(parent text, months_ahead integer,
                                                   at timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    made integer := 0;
    month timestamptz;
    low uuid;
    high uuid;
    caller_lock_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    FOR i IN 0..months_ahead LOOP
        month := utc_month(at, i);
        low := uuid_v7_floor(month);
        high := uuid_v7_floor(utc_month(month, 1));
        CONTINUE WHEN EXISTS (
            SELECT 1
            FROM pg_inherits inh
            JOIN pg_class part ON part.oid = inh.inhrelid
            CROSS JOIN LATERAL (SELECT pg_get_expr(part.relpartbound, part.oid) AS bound) b
            WHERE inh.inhparent = parent::regclass
              AND coalesce(substring(b.bound FROM 'FROM \(''([0-9a-f-]+)''\)')::uuid < high, true)
              AND coalesce(substring(b.bound FROM 'TO \(''([0-9a-f-]+)''\)')::uuid > low, true));
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           parent || to_char(month AT TIME ZONE 'UTC', '_YYYY_MM'), parent,
                           low, high);
            made := made + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'the partition of % for % waits for the next call: the table is busy',
                parent, to_char(month AT TIME ZONE 'UTC', 'YYYY-MM');
            EXIT;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', caller_lock_timeout, true);
    RETURN made;
END
$$;
