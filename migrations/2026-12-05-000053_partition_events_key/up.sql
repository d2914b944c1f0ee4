-- Partitioned history: proves the deliveries' foreign key, re-pointed at the partitioned
-- `events` NOT VALID, over the rows already there. Outside a transaction: the scan lets
-- writes go on.
ALTER TABLE webhook_deliveries VALIDATE CONSTRAINT webhook_deliveries_event_id_fkey;
