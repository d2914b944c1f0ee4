DROP TABLE revoked_tokens;
DROP TRIGGER api_clients_credentials_version ON api_clients;
DROP FUNCTION api_clients_bump_credentials_version();
DROP TRIGGER users_credentials_version ON users;
DROP FUNCTION users_bump_credentials_version();
ALTER TABLE api_clients DROP COLUMN credentials_version;
ALTER TABLE users DROP COLUMN credentials_version;
