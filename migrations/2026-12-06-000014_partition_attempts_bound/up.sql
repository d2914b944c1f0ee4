-- Partitioned history: `webhook_attempts` by month with its deliveries, so that a month of
-- deliveries goes with its attempts as whole partitions. Step 1 of 3. Partitioned by RANGE
-- (id) like the rest (`id` stays the whole primary key): from here on an attempt's id is in
-- its delivery's millisecond (`uuid_v7_beside`), which is its event's, so it lands in its
-- delivery's month. The bound of the rows already there, NOT VALID, proved by the next step.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_before_bound '
                   'CHECK (id < %L) NOT VALID', uuid_v7_floor(utc_month(now(), 1)));
END
$$;
