CREATE INDEX interactions_customer_open_complaints_idx ON interactions (customer_id)
    WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL;
