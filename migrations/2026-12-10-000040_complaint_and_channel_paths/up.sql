-- Interaction reads that fetched rows from the heap only to discard them (issue 17, noticed in
-- the bench's plans at a million customers and three million interactions).
--
-- Complaint statistics count the complaints opened in a window (90 days by default) per
-- cause. Only an index by kind served them: every complaint ever made was fetched from the
-- heap to test its time (90 070 for 25 722 in the window, 1.2 s from a cold cache). This one
-- holds the complaints by opening time, with the cause and the customer (owned-only access)
-- beside the key, so the window is one range of it.
CREATE INDEX interactions_complaints_opened_idx ON interactions (occurred_at)
    INCLUDE (cause, customer_id)
    WHERE kind = 'complaint' AND deleted_at IS NULL;

-- The open complaints per severity, the statistics' other part, fetched each open complaint
-- from the heap (3 602 rows in 3 536 pages, 269 ms from a cold cache). The index of open
-- complaints by customer (churn risk) now carries their severity and opening time, so the
-- statistics read that small index alone.
DROP INDEX interactions_customer_open_complaints_idx;
CREATE INDEX interactions_customer_open_complaints_idx ON interactions (customer_id)
    INCLUDE (severity, occurred_at)
    WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL;

-- The list filtered by channel, newest or oldest first: no index led by the channel, so a
-- page walked the list index and skipped other channels (12 345 rows for 51 of
-- `channel=visit&direction=outbound`, 83 ms). The direction, two values, stays a condition.
CREATE INDEX interactions_channel_idx ON interactions (channel, timeline_at, id)
    WHERE deleted_at IS NULL;
