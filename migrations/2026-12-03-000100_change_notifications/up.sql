-- Every instance keeps short-lived caches of who may call (the access cache: a user's or
-- client's standing, revoked tokens, service token records) and of the signing keys.
-- These triggers tell every instance what changed, on commit, whichever path wrote it (the
-- API, the CLI, SQL): instances LISTEN on rapport_access and rapport_keys over a direct
-- connection and forget or reload at once.

-- The payload names what to forget: TG_ARGV[0] (a prefix) followed by the changed row's
-- column TG_ARGV[1]: `user:<id>`, `api_client:<id>`, a subject's actor key, `jti:<jti>`.
CREATE FUNCTION rapport_notify_access() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify('rapport_access', TG_ARGV[0] || (changed ->> TG_ARGV[1]));
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_access AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION rapport_notify_access('user:', 'id');
CREATE TRIGGER api_clients_notify_access AFTER UPDATE OR DELETE ON api_clients
    FOR EACH ROW EXECUTE FUNCTION rapport_notify_access('api_client:', 'id');
CREATE TRIGGER revoked_tokens_notify_access AFTER INSERT ON revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION rapport_notify_access('', 'subject');
CREATE TRIGGER service_tokens_notify_access AFTER INSERT OR UPDATE OR DELETE ON service_tokens
    FOR EACH ROW EXECUTE FUNCTION rapport_notify_access('jti:', 'jti');

CREATE FUNCTION rapport_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rapport_keys', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_notify_keys();
