DROP TABLE loyalty_tier_changes;
DROP TABLE loyalty_ledger;
DROP TABLE loyalty_lots;
DROP TABLE loyalty_accounts;
DROP FUNCTION loyalty_window_start(timestamptz, integer);
DROP FUNCTION loyalty_expiry(text, integer, timestamptz);
DROP FUNCTION loyalty_points(bigint, integer, bigint, integer, text);
DROP FUNCTION uuid_v7();
