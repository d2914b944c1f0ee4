ALTER TABLE api_clients DROP COLUMN rate_limit;
