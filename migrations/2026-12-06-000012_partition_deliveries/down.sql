-- Back to one table: the partitions' rows move into `webhook_deliveries_before`, which
-- takes the name.
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_replay_of_fkey;
ALTER TABLE webhook_deliveries DETACH PARTITION webhook_deliveries_before;
ALTER TABLE webhook_deliveries_before DROP CONSTRAINT webhook_deliveries_before_bound;
INSERT INTO webhook_deliveries_before SELECT * FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_before RENAME TO webhook_deliveries;
ALTER INDEX webhook_deliveries_before_pkey RENAME TO webhook_deliveries_pkey;
ALTER INDEX webhook_deliveries_before_event_key RENAME TO webhook_deliveries_event_key;
ALTER INDEX webhook_deliveries_before_head_idx RENAME TO webhook_deliveries_head_idx;
ALTER INDEX webhook_deliveries_before_list_idx RENAME TO webhook_deliveries_list_idx;
ALTER INDEX webhook_deliveries_before_event_idx RENAME TO webhook_deliveries_event_idx;
ALTER INDEX webhook_deliveries_before_replay_idx RENAME TO webhook_deliveries_replay_idx;
ALTER TABLE webhook_deliveries ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('webhook_deliveries', 'seq'),
              COALESCE((SELECT max(seq) FROM webhook_deliveries), 0) + 1, false);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_replay_of_fkey
    FOREIGN KEY (replay_of) REFERENCES webhook_deliveries (id) ON DELETE SET NULL;
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id) ON DELETE CASCADE;
