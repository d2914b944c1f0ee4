-- Partitioned history, `webhook_deliveries` step 4: proves the attempts' foreign key,
-- re-pointed at the partitioned table NOT VALID, over the rows already there. Outside a
-- transaction: the scan lets writes go on.
ALTER TABLE webhook_attempts VALIDATE CONSTRAINT webhook_attempts_delivery_id_fkey;
