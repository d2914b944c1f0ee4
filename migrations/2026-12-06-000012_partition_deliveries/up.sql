-- Partitioned history, `webhook_deliveries` step 3: the swap, in one short transaction. The
-- old table is renamed `webhook_deliveries_before` and attached, without a scan (its bound
-- is proved), as the first partition of a new `webhook_deliveries` partitioned by RANGE (id);
-- its indexes and its foreign keys to `webhooks` and `events` become the partition's of the
-- new table's, without a build or a scan. Monthly partitions follow, made ahead by the
-- service, and the events' retention drops a month of deliveries with its month of events.

-- Every table the swap locks is taken first, in the order the service's transactions take
-- them (a delivery is written before the event that journals it, an attempt after its
-- delivery), so that no writer holding one waits for another the swap holds: a deadlock
-- would fail a writer or the migration. The deliveries first, also so that no delivery
-- takes a number between the identity's last one read below and the sequence that carries
-- on from it (PostgreSQL 15 has no identity columns on partitioned tables). Writers wait
-- for the swap, which reads no rows.
LOCK TABLE webhook_deliveries IN ACCESS EXCLUSIVE MODE;
LOCK TABLE events, webhooks IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE webhook_attempts IN ACCESS EXCLUSIVE MODE;
DO $$
DECLARE
    next bigint := nextval(pg_get_serial_sequence('webhook_deliveries', 'seq'));
BEGIN
    ALTER TABLE webhook_deliveries ALTER COLUMN seq DROP IDENTITY;
    EXECUTE format('CREATE SEQUENCE webhook_deliveries_seq_seq START WITH %s', next);
END
$$;

ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_before;
ALTER INDEX webhook_deliveries_pkey RENAME TO webhook_deliveries_before_pkey;
ALTER INDEX webhook_deliveries_event_key RENAME TO webhook_deliveries_before_event_key;
ALTER INDEX webhook_deliveries_head_idx RENAME TO webhook_deliveries_before_head_idx;
ALTER INDEX webhook_deliveries_list_idx RENAME TO webhook_deliveries_before_list_idx;
ALTER INDEX webhook_deliveries_event_idx RENAME TO webhook_deliveries_before_event_idx;
ALTER INDEX webhook_deliveries_replay_idx RENAME TO webhook_deliveries_before_replay_idx;
-- The replays' key named the old table; the new table's, below, covers it.
ALTER TABLE webhook_deliveries_before DROP CONSTRAINT webhook_deliveries_replay_of_fkey;

CREATE TABLE webhook_deliveries (
    id                uuid NOT NULL,
    webhook_id        uuid NOT NULL
                      CONSTRAINT webhook_deliveries_webhook_id_fkey
                      REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id          uuid NOT NULL
                      CONSTRAINT webhook_deliveries_event_id_fkey
                      REFERENCES events (id) ON DELETE CASCADE,
    seq               bigint NOT NULL DEFAULT nextval('webhook_deliveries_seq_seq'),
    status            text NOT NULL DEFAULT 'pending'
                      CONSTRAINT webhook_deliveries_status_check
                      CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz,
    lease_token       uuid,
    first_attempt_at  timestamptz,
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_latency_ms   integer,
    last_error        text,
    replay_of         uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
ALTER SEQUENCE webhook_deliveries_seq_seq OWNED BY webhook_deliveries.seq;
CREATE INDEX webhook_deliveries_head_idx ON webhook_deliveries (webhook_id, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_replay_idx ON webhook_deliveries (replay_of);

DO $$
DECLARE
    bound text := substring(
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conname = 'webhook_deliveries_before_bound'
           AND conrelid = 'webhook_deliveries_before'::regclass)
        FROM '''([0-9a-f-]+)''');
BEGIN
    EXECUTE format('ALTER TABLE webhook_deliveries ATTACH PARTITION webhook_deliveries_before '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
END
$$;

-- A replay is of the same event, so in the same partition as what it replays. Checking the
-- rows already there reads the few replays through `webhook_deliveries_before_replay_idx`.
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_replay_of_fkey
    FOREIGN KEY (replay_of) REFERENCES webhook_deliveries (id) ON DELETE SET NULL;

-- The attempts' foreign key followed the old table: it now names the partitioned one, NOT
-- VALID (no scan here; the old key proved every row), validated by the next step.
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id) ON DELETE CASCADE NOT VALID;

SELECT rapport_make_partitions('webhook_deliveries', 3);
