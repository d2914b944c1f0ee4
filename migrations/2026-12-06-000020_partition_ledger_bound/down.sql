ALTER TABLE loyalty_ledger DROP CONSTRAINT IF EXISTS loyalty_ledger_before_bound;
