DROP TABLE service_tokens;
DROP TABLE signing_keys;
