DROP INDEX customer_lifecycle_events_loss_idx;
DROP INDEX customer_lifecycle_events_reason_code_idx;
ALTER TABLE customer_lifecycle_events
    DROP CONSTRAINT customer_lifecycle_events_reason_code_loss_check,
    DROP COLUMN reason_code;
