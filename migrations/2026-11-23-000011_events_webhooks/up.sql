-- Events and webhooks. Every change that integrations hear about writes an event in the same
-- transaction as the change (the outbox): a rolled-back change leaves no event, a committed
-- one always has its event. The feed and the webhook worker read events in (txid, position)
-- order and only below the oldest transaction still running, so an event that commits late
-- is never skipped by a reader that has moved past it.

CREATE TABLE events (
    id           uuid PRIMARY KEY,
    position     bigint GENERATED ALWAYS AS IDENTITY,
    txid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    -- The object as the API shows it after the change.
    data         jsonb NOT NULL,
    -- Changed fields' values before the change (updates only).
    previous     jsonb,
    request_id   text
);
CREATE INDEX events_order_idx ON events (txid, position);
CREATE INDEX events_type_order_idx ON events (type, txid, position);
CREATE INDEX events_object_idx ON events (object_type, object_id);
CREATE INDEX events_occurred_idx ON events (occurred_at);

CREATE TABLE webhooks (
    id                          uuid PRIMARY KEY,
    url                         text NOT NULL,
    description                 text,
    -- Event types delivered; empty: all of them.
    event_types                 text[] NOT NULL DEFAULT '{}',
    -- A JSON object the event's object must contain (`@>`), or null for every object.
    filter                      jsonb,
    active                      boolean NOT NULL DEFAULT true,
    secret                      text NOT NULL,
    -- After a rotation the old secret signs too, until it expires.
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    disabled_reason             text,
    disabled_at                 timestamptz,
    -- Where the fan-out stands in the event order: events after it are still to be matched.
    cursor_txid                 xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
    cursor_position             bigint NOT NULL DEFAULT 0,
    version                     integer NOT NULL DEFAULT 1,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_created_idx ON webhooks (created_at, id);

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id          uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- Delivery order within a webhook: the event order at fan-out.
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    -- Held by a worker (the claim's token) until then; a worker that stopped mid-request
    -- loses it, and only the holder of the token may record the outcome.
    lease_until       timestamptz,
    lease_token       uuid,
    first_attempt_at  timestamptz,
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_latency_ms   integer,
    last_error        text,
    replay_of         uuid REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz
);
-- One delivery per webhook and event from the fan-out; replays and pings are extra rows.
-- Each delivery is updated as it is leased and as it is recorded, and the pending-head index
-- keeps entries for rows long done until they are vacuumed: vacuum it early.
ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
                                    autovacuum_vacuum_threshold = 1000,
                                    autovacuum_analyze_scale_factor = 0.05);
CREATE UNIQUE INDEX webhook_deliveries_event_key ON webhook_deliveries (webhook_id, event_id)
    WHERE replay_of IS NULL;
CREATE INDEX webhook_deliveries_head_idx ON webhook_deliveries (webhook_id, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_replay_idx ON webhook_deliveries (replay_of);

CREATE TABLE webhook_attempts (
    id            uuid PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL,
    status_code   integer,
    latency_ms    integer NOT NULL,
    error         text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempted_at);
