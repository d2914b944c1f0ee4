-- Partitioned history, `webhook_attempts` step 3: the swap, catalog-only. The old table
-- becomes the partition `webhook_attempts_before`, attached without a scan, its index
-- adopted without a build and its foreign key to the deliveries (validated by step
-- 2026-12-06-000013) without a scan.

-- The deliveries first, then the attempts: the order the service writes them in, so that no
-- writer holding one waits for the other while the swap holds it.
LOCK TABLE webhook_deliveries IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE webhook_attempts IN ACCESS EXCLUSIVE MODE;

ALTER TABLE webhook_attempts RENAME TO webhook_attempts_before;
ALTER INDEX webhook_attempts_pkey RENAME TO webhook_attempts_before_pkey;
ALTER INDEX webhook_attempts_delivery_idx RENAME TO webhook_attempts_before_delivery_idx;

CREATE TABLE webhook_attempts (
    id            uuid NOT NULL,
    delivery_id   uuid NOT NULL
                  CONSTRAINT webhook_attempts_delivery_id_fkey
                  REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL,
    status_code   integer,
    latency_ms    integer NOT NULL,
    error         text,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempted_at);

DO $$
DECLARE
    bound text := substring(
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conname = 'webhook_attempts_before_bound'
           AND conrelid = 'webhook_attempts_before'::regclass)
        FROM '''([0-9a-f-]+)''');
BEGIN
    EXECUTE format('ALTER TABLE webhook_attempts ATTACH PARTITION webhook_attempts_before '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
END
$$;

SELECT rapport_make_partitions('webhook_attempts', 3);
