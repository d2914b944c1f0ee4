-- The key ring that signs and verifies bearer tokens (when RAPPORT_JWT_SECRET is not set).
-- `secret` is the key sealed under the server key (RAPPORT_SECRET_KEY), never the key itself,
-- so a copy of the database alone signs nothing. The newest key that still signs signs;
-- every key verifies the tokens that name its `kid` until `verifies_until`.
CREATE TABLE signing_keys (
    kid            text PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 64),
    secret         text NOT NULL,
    -- The key generated before key ids existed (moved here from app_secrets): the only one
    -- that takes tokens without a `kid`, until it stops verifying.
    legacy         boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- When it stopped (or stops) signing new tokens; NULL while it is the one that signs.
    signs_until    timestamptz,
    -- When its tokens stop being accepted; NULL while it signs.
    verifies_until timestamptz,
    retired_at     timestamptz,
    CHECK (verifies_until IS NULL OR signs_until IS NOT NULL)
);

-- Tokens minted by `rapport token`: recorded so that they can be listed and revoked one by
-- one. A service token whose `jti` is not here, or is revoked, is refused.
CREATE TABLE service_tokens (
    jti        text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 64),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    role       text NOT NULL CHECK (role IN ('admin', 'manager', 'agent', 'viewer')),
    -- The signing key's id: a key rotated out keeps verifying until its tokens expired.
    kid        text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    issued_by  text NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_by text,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX service_tokens_kid_idx ON service_tokens (kid, expires_at);
