-- Why a customer was lost: a move into `dissolution` or `churned` carries a code from a
-- closed list beside its free-text reason, so that lost customers can be counted by cause
-- (DOMAIN.md, lost customers). Entries written before have none.
ALTER TABLE customer_lifecycle_events
    ADD COLUMN reason_code text
        CONSTRAINT customer_lifecycle_events_reason_code_check
        CHECK (reason_code IN ('service_quality', 'product_defect', 'communication', 'price',
                               'competitor', 'moved_away', 'other')),
    ADD CONSTRAINT customer_lifecycle_events_reason_code_loss_check
        CHECK (reason_code IS NULL OR to_stage IN ('dissolution', 'churned'));

-- `GET /v1/customers?churn_reason=…` reads the coded entries by code; whether one is its
-- customer's latest loss move is then one probe of the loss moves index below.
CREATE INDEX customer_lifecycle_events_reason_code_idx
    ON customer_lifecycle_events (reason_code, customer_id)
    WHERE reason_code IS NOT NULL;

-- The moves into and out of the loss stages, by customer and time: the latest loss move of
-- a customer, and the win-back report's episodes.
CREATE INDEX customer_lifecycle_events_loss_idx
    ON customer_lifecycle_events (customer_id, changed_at, id)
    WHERE to_stage IN ('dissolution', 'churned');
