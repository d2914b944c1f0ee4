-- Partitioned history, step 3 of 3: the swap, in one short transaction. The old table is
-- renamed `events_before` and attached, without a scan (its bound is proved), as the first
-- partition of a new `events` partitioned by RANGE (id); its indexes become the partitions'
-- of the new table's, without a build. Monthly partitions follow, made ahead of time by the
-- service (`rapport_make_partitions`), and retention drops a month at a time.
--
-- PostgreSQL 15 has no identity columns on partitioned tables: `position` takes its numbers
-- from a sequence that carries on where the identity stopped.

-- The identity's next number is taken before it goes (not max(position), which would read
-- the whole table while holding its lock).
DO $$
DECLARE
    next bigint := nextval(pg_get_serial_sequence('events', 'position'));
BEGIN
    ALTER TABLE events ALTER COLUMN position DROP IDENTITY;
    EXECUTE format('CREATE SEQUENCE events_position_seq START WITH %s', next);
END
$$;

ALTER TABLE events RENAME TO events_before;
ALTER INDEX events_pkey RENAME TO events_before_pkey;
ALTER INDEX events_order_idx RENAME TO events_before_order_idx;
ALTER INDEX events_type_order_idx RENAME TO events_before_type_order_idx;
ALTER INDEX events_object_idx RENAME TO events_before_object_idx;
ALTER INDEX events_occurred_idx RENAME TO events_before_occurred_idx;

CREATE TABLE events (
    id           uuid NOT NULL,
    position     bigint NOT NULL DEFAULT nextval('events_position_seq'),
    txid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    data         jsonb NOT NULL,
    previous     jsonb,
    request_id   text,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
ALTER SEQUENCE events_position_seq OWNED BY events.position;
CREATE INDEX events_order_idx ON events (txid, position);
CREATE INDEX events_type_order_idx ON events (type, txid, position);
CREATE INDEX events_object_idx ON events (object_type, object_id);
CREATE INDEX events_occurred_idx ON events (occurred_at);

DO $$
DECLARE
    bound text := substring(
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conname = 'events_before_bound' AND conrelid = 'events_before'::regclass)
        FROM '''([0-9a-f-]+)''');
BEGIN
    EXECUTE format('ALTER TABLE events ATTACH PARTITION events_before FOR VALUES FROM (MINVALUE) TO (%L)',
                   bound);
END
$$;

-- The deliveries' foreign key followed the old table: it now names the partitioned one.
-- NOT VALID takes no scan here; every row already satisfies it (the old key proved it),
-- and new rows are checked as always.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_id_fkey;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE NOT VALID;

-- The monthly partitions of `parent` from the current UTC month to `months_ahead` months
-- after it, each named `<parent>_YYYY_MM`, holding the ids (UUIDv7) of that month; those
-- that exist, or that a partition already covers, are skipped. Returns how many it made.
CREATE FUNCTION rapport_make_partitions(parent text, months_ahead integer,
                                        at timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    made integer := 0;
    month timestamptz;
BEGIN
    FOR i IN 0..months_ahead LOOP
        month := utc_month(at, i);
        CONTINUE WHEN to_regclass(quote_ident(parent || to_char(month AT TIME ZONE 'UTC', '_YYYY_MM')))
                      IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           parent || to_char(month AT TIME ZONE 'UTC', '_YYYY_MM'), parent,
                           uuid_v7_floor(month), uuid_v7_floor(utc_month(month, 1)));
            made := made + 1;
        EXCEPTION WHEN invalid_object_definition THEN
            -- Already covered (by `<parent>_before`): nothing to make.
            NULL;
        END;
    END LOOP;
    RETURN made;
END
$$;

-- The monthly partitions of `parent`, oldest first, with the range of ids each holds and
-- the instant after its month.
CREATE FUNCTION rapport_monthly_partitions(parent text)
RETURNS TABLE (name text, low uuid, high uuid, ends timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT p.name, uuid_v7_floor(p.month), uuid_v7_floor(utc_month(p.month, 1)),
           utc_month(p.month, 1)
    FROM (
        SELECT c.relname::text AS name,
               to_date(right(c.relname, 7), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC' AS month
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
          AND c.relname ~ ('^' || parent || '_[0-9]{4}_[0-9]{2}$')
    ) p
    ORDER BY p.month
$$;

SELECT rapport_make_partitions('events', 3);

-- Detaches the partition `partition` of `parent` and drops it: retention by the month.
CREATE FUNCTION rapport_drop_partition(parent text, partition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, partition);
    EXECUTE format('DROP TABLE %I', partition);
END
$$;
