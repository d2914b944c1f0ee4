-- Complaint statistics count the complaints opened in a window (90 days by default) per
-- cause (issue 17). Only the index by kind served them: every complaint ever made was
-- fetched from the heap to test its time (90 070 for 25 722 in the window at three million
-- interactions: 1.2 s from a cold cache, 127 ms warm). This one holds the complaints by
-- opening time, with the cause and the customer (owned-only access) beside the key, so the
-- window is one range of it, read alone (8.4 ms warm). Built without blocking the
-- interactions' writes (outside a transaction), as are the indexes of 000041 and 000043.
CREATE INDEX CONCURRENTLY IF NOT EXISTS interactions_complaints_opened_idx
    ON interactions (occurred_at) INCLUDE (cause, customer_id)
    WHERE kind = 'complaint' AND deleted_at IS NULL;
