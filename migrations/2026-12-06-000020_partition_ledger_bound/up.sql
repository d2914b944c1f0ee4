-- Partitioned history (issue 24): the points ledger by month, as `events` (migrations
-- 2026-12-05-000050 to 000053; src/db/partitions.rs). Step 1 of 3: the bound of the rows
-- already there, NOT VALID (a moment's lock), proved by the next step while writes go on.
--
-- The ledger is partitioned by RANGE (id): its ids are UUIDv7 made when the entry is
-- written (`uuid_v7()`), so `id` stays the whole primary key. Its `UNIQUE (seq)` cannot
-- hold on the partitioned table (a unique index must include the partition key): the
-- entries' numbers come from one sequence, as the column's default, and nothing writes
-- `seq` itself, so they stay distinct without it; the rows from before keep their index.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE loyalty_ledger ADD CONSTRAINT loyalty_ledger_before_bound '
                   'CHECK (id < %L) NOT VALID', uuid_v7_floor(utc_month(now(), 1)));
END
$$;
