-- Partitioned history, `loyalty_ledger` step 3: the swap, catalog-only. The old table
-- becomes the partition `loyalty_ledger_before`, attached without a scan (its bound is
-- proved), its indexes adopted without a build and its foreign keys without a scan. The
-- ledger has no retention: the service only makes its months ahead.

-- Every table the swap locks is taken first, in the order the service's transactions take
-- them (a purchase, then its lot, its ledger entry, the member's balance), so that no writer
-- holding one waits for another the swap holds: a deadlock would fail a writer or the
-- migration. The ledger before the numbers are read, so that no entry takes a number
-- between the identity's last one read below and the sequence that carries on from it.
LOCK TABLE purchases, loyalty_lots IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE loyalty_ledger IN ACCESS EXCLUSIVE MODE;
LOCK TABLE loyalty_accounts IN SHARE ROW EXCLUSIVE MODE;
DO $$
DECLARE
    next bigint := nextval(pg_get_serial_sequence('loyalty_ledger', 'seq'));
BEGIN
    ALTER TABLE loyalty_ledger ALTER COLUMN seq DROP IDENTITY;
    EXECUTE format('CREATE SEQUENCE loyalty_ledger_seq_seq START WITH %s', next);
END
$$;

ALTER TABLE loyalty_ledger RENAME TO loyalty_ledger_before;
ALTER INDEX loyalty_ledger_pkey RENAME TO loyalty_ledger_before_pkey;
-- Stays on the rows from before only (see step 1).
ALTER INDEX loyalty_ledger_seq_key RENAME TO loyalty_ledger_before_seq_key;
ALTER INDEX loyalty_ledger_customer_idx RENAME TO loyalty_ledger_before_customer_idx;
ALTER INDEX loyalty_ledger_lot_idx RENAME TO loyalty_ledger_before_lot_idx;
ALTER INDEX loyalty_ledger_purchase_idx RENAME TO loyalty_ledger_before_purchase_idx;
ALTER INDEX loyalty_ledger_qualifying_idx RENAME TO loyalty_ledger_before_qualifying_idx;

CREATE TABLE loyalty_ledger (
    id            uuid NOT NULL,
    -- The order entries were written in (the ledger's pages): one sequence, never written
    -- by hand, so distinct without a unique index.
    seq           bigint NOT NULL DEFAULT nextval('loyalty_ledger_seq_seq'),
    customer_id   uuid NOT NULL
                  CONSTRAINT loyalty_ledger_customer_id_fkey
                  REFERENCES loyalty_accounts (customer_id),
    posting_id    uuid NOT NULL,
    kind          text NOT NULL
                  CONSTRAINT loyalty_ledger_kind_check
                  CHECK (kind IN ('earn', 'redeem', 'adjust', 'expire', 'reverse')),
    points        bigint NOT NULL CONSTRAINT loyalty_ledger_points_check CHECK (points <> 0),
    lot_id        uuid NOT NULL
                  CONSTRAINT loyalty_ledger_lot_id_fkey REFERENCES loyalty_lots (id),
    expires_at    timestamptz,
    purchase_id   uuid CONSTRAINT loyalty_ledger_purchase_id_fkey REFERENCES purchases (id),
    qualifying_at timestamptz,
    reason        text CONSTRAINT loyalty_ledger_reason_check
                  CHECK (length(reason) BETWEEN 1 AND 500),
    occurred_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    actor_type    text NOT NULL,
    actor_id      text NOT NULL,
    CONSTRAINT loyalty_ledger_check
        CHECK (CASE kind WHEN 'earn' THEN points > 0 WHEN 'adjust' THEN true ELSE points < 0 END),
    CONSTRAINT loyalty_ledger_check1
        CHECK ((kind IN ('earn', 'reverse')) = (purchase_id IS NOT NULL AND qualifying_at IS NOT NULL)),
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
ALTER SEQUENCE loyalty_ledger_seq_seq OWNED BY loyalty_ledger.seq;
CREATE INDEX loyalty_ledger_customer_idx ON loyalty_ledger (customer_id, seq);
CREATE INDEX loyalty_ledger_lot_idx ON loyalty_ledger (lot_id);
CREATE INDEX loyalty_ledger_purchase_idx ON loyalty_ledger (purchase_id);
CREATE INDEX loyalty_ledger_qualifying_idx ON loyalty_ledger (customer_id, qualifying_at)
    INCLUDE (points) WHERE qualifying_at IS NOT NULL;

DO $$
DECLARE
    bound text := substring(
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conname = 'loyalty_ledger_before_bound'
           AND conrelid = 'loyalty_ledger_before'::regclass)
        FROM '''([0-9a-f-]+)''');
BEGIN
    EXECUTE format('ALTER TABLE loyalty_ledger ATTACH PARTITION loyalty_ledger_before '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
END
$$;

SELECT rapport_make_partitions('loyalty_ledger', 3);
