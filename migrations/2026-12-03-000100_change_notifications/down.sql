DROP TRIGGER signing_keys_notify ON signing_keys;
DROP FUNCTION rapport_notify_keys();
DROP TRIGGER service_tokens_notify_access ON service_tokens;
DROP TRIGGER revoked_tokens_notify_access ON revoked_tokens;
DROP TRIGGER api_clients_notify_access ON api_clients;
DROP TRIGGER users_notify_access ON users;
DROP FUNCTION rapport_notify_access();
