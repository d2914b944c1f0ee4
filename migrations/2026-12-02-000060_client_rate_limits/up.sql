-- An API client's own request limit, such as '600/60s' or 'off'; NULL takes the default
-- (RAPPORT_RATE_LIMIT).
ALTER TABLE api_clients ADD COLUMN rate_limit text
    CHECK (rate_limit ~ '^(off|0|[1-9][0-9]{0,8}/[1-9][0-9]{0,8}(ms|s|m|h|d)?)$');
