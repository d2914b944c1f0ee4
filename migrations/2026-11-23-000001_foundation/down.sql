DROP TABLE idempotency_keys;
DROP TABLE audit_events;
DROP TABLE api_clients;
DROP TABLE users;
DROP TABLE app_secrets;
