-- Partitioned history, `webhook_deliveries` step 2: the bound proved while writes go on
-- (outside a transaction: VALIDATE lets writes through while it scans).
ALTER TABLE webhook_deliveries VALIDATE CONSTRAINT webhook_deliveries_before_bound;
