-- Request limits shared across instances (RAPPORT_RATE_LIMIT_SHARED=true): one token bucket
-- per caller, which every instance adds what it admitted to a few times a second (see
-- src/http/shared_limits.rs). UNLOGGED: no WAL, so the flushes cost the primary little and
-- nothing of it goes to the replicas; a crash of the server empties it, which gives every
-- caller a full bucket, as a restart of the service always did.
CREATE UNLOGGED TABLE rate_limit_buckets (
    -- The caller's key (`user:<id>`, `client:<id>`, `service:<id>`).
    caller text PRIMARY KEY,
    -- Requests left as of `at`; below zero when instances together admitted more than the
    -- bucket held before they agreed: the caller then waits until that is refilled.
    tokens double precision NOT NULL,
    at timestamptz NOT NULL,
    -- The limit the bucket counts under: `quota` requests refilled evenly over `window_ms`.
    quota integer NOT NULL CHECK (quota > 0),
    window_ms bigint NOT NULL CHECK (window_ms > 0)
);
