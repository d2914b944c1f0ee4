-- Partitioned history, `loyalty_ledger` step 2: the bound proved while writes go on
-- (outside a transaction: VALIDATE lets writes through while it scans).
ALTER TABLE loyalty_ledger VALIDATE CONSTRAINT loyalty_ledger_before_bound;
