-- Back to one table: the partitions' rows move into `webhook_attempts_before`, which takes
-- the name.
ALTER TABLE webhook_attempts DETACH PARTITION webhook_attempts_before;
ALTER TABLE webhook_attempts_before DROP CONSTRAINT webhook_attempts_before_bound;
INSERT INTO webhook_attempts_before SELECT * FROM webhook_attempts;
DROP TABLE webhook_attempts;
ALTER TABLE webhook_attempts_before RENAME TO webhook_attempts;
ALTER INDEX webhook_attempts_before_pkey RENAME TO webhook_attempts_pkey;
ALTER INDEX webhook_attempts_before_delivery_idx RENAME TO webhook_attempts_delivery_idx;
