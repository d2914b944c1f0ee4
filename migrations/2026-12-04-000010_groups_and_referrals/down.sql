ALTER TABLE analytics_settings DROP COLUMN influential_referrals;
DROP INDEX customers_influential_idx;
DROP INDEX customers_referred_by_idx;
DROP INDEX customers_parent_idx;
ALTER TABLE customers
    DROP COLUMN influential,
    DROP COLUMN referred_by_id,
    DROP COLUMN parent_id;
