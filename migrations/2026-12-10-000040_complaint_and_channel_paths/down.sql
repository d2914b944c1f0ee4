DROP INDEX interactions_channel_idx;
DROP INDEX interactions_customer_open_complaints_idx;
CREATE INDEX interactions_customer_open_complaints_idx ON interactions (customer_id)
    WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL;
DROP INDEX interactions_complaints_opened_idx;
