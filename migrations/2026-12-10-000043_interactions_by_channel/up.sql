-- The interaction list filtered by channel, newest or oldest first (issue 17): no index was
-- led by the channel, so a page walked the list index and skipped the other channels
-- (12 345 rows for the 51 of `channel=visit&direction=outbound`, 83 ms). The direction, two
-- values, stays a condition. Built without blocking the interactions' writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS interactions_channel_idx
    ON interactions (channel, timeline_at, id) WHERE deleted_at IS NULL;
