-- Back to one table: the partitions' rows move into `loyalty_ledger_before`, which takes
-- the name (its `UNIQUE (seq)` held throughout).
ALTER TABLE loyalty_ledger DETACH PARTITION loyalty_ledger_before;
ALTER TABLE loyalty_ledger_before DROP CONSTRAINT loyalty_ledger_before_bound;
INSERT INTO loyalty_ledger_before SELECT * FROM loyalty_ledger;
DROP TABLE loyalty_ledger;
ALTER TABLE loyalty_ledger_before RENAME TO loyalty_ledger;
ALTER INDEX loyalty_ledger_before_pkey RENAME TO loyalty_ledger_pkey;
ALTER INDEX loyalty_ledger_before_seq_key RENAME TO loyalty_ledger_seq_key;
ALTER INDEX loyalty_ledger_before_customer_idx RENAME TO loyalty_ledger_customer_idx;
ALTER INDEX loyalty_ledger_before_lot_idx RENAME TO loyalty_ledger_lot_idx;
ALTER INDEX loyalty_ledger_before_purchase_idx RENAME TO loyalty_ledger_purchase_idx;
ALTER INDEX loyalty_ledger_before_qualifying_idx RENAME TO loyalty_ledger_qualifying_idx;
ALTER TABLE loyalty_ledger ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('loyalty_ledger', 'seq'),
              COALESCE((SELECT max(seq) FROM loyalty_ledger), 0) + 1, false);
