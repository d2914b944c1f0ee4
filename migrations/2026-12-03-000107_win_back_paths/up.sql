-- The win-back report reads the moves into `churned` of a period, oldest first (its figures
-- and its paged list of churned customers, by time and id), and for each the customer's
-- return to an active stage: moves out of `churned`.
CREATE INDEX customer_lifecycle_events_churned_idx
    ON customer_lifecycle_events (changed_at, id)
    WHERE to_stage = 'churned';
CREATE INDEX customer_lifecycle_events_returns_idx
    ON customer_lifecycle_events (customer_id, changed_at)
    WHERE from_stage = 'churned';
