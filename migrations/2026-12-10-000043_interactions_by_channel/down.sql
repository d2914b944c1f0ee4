DROP INDEX CONCURRENTLY IF EXISTS interactions_channel_idx;
