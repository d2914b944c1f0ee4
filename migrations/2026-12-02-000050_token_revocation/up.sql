-- Tokens carry the credentials version they were issued under; a request whose token names
-- an older version than its user's or client's is refused. The triggers bump the version on
-- every change that must end old tokens, whichever path makes it (API, CLI, plain SQL).
ALTER TABLE users ADD COLUMN credentials_version bigint NOT NULL DEFAULT 1;
ALTER TABLE api_clients ADD COLUMN credentials_version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION users_bump_credentials_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
        OR NEW.role IS DISTINCT FROM OLD.role
        OR NEW.active IS DISTINCT FROM OLD.active THEN
        NEW.credentials_version := OLD.credentials_version + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_credentials_version
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_bump_credentials_version();

CREATE FUNCTION api_clients_bump_credentials_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.secret_hash IS DISTINCT FROM OLD.secret_hash
        OR NEW.scopes IS DISTINCT FROM OLD.scopes
        OR NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        NEW.credentials_version := OLD.credentials_version + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER api_clients_credentials_version
    BEFORE UPDATE ON api_clients
    FOR EACH ROW EXECUTE FUNCTION api_clients_bump_credentials_version();

-- Single tokens revoked before their expiry (`POST /v1/auth/logout`), kept until they
-- would have expired anyway.
CREATE TABLE revoked_tokens (
    jti text PRIMARY KEY,
    subject text NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_tokens_subject_idx ON revoked_tokens (subject, expires_at);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);
