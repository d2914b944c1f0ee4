-- Back to one table: the partitions' rows move into `events_before`, which takes the name.
DROP FUNCTION rapport_drop_partition(text, text);
DROP FUNCTION rapport_monthly_partitions(text);
DROP FUNCTION rapport_make_partitions(text, integer, timestamptz);
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_id_fkey;
ALTER TABLE events DETACH PARTITION events_before;
ALTER TABLE events_before DROP CONSTRAINT events_before_bound;
INSERT INTO events_before SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events_before RENAME TO events;
ALTER INDEX events_before_pkey RENAME TO events_pkey;
ALTER INDEX events_before_order_idx RENAME TO events_order_idx;
ALTER INDEX events_before_type_order_idx RENAME TO events_type_order_idx;
ALTER INDEX events_before_object_idx RENAME TO events_object_idx;
ALTER INDEX events_before_occurred_idx RENAME TO events_occurred_idx;
ALTER TABLE events ALTER COLUMN position DROP DEFAULT;
DROP SEQUENCE IF EXISTS events_position_seq;
ALTER TABLE events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('events', 'position'), COALESCE((SELECT max(position) FROM events), 0) + 1, false);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
