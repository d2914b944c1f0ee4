-- The sales pipeline (DOMAIN.md section 7): ordered stages, each with a win probability;
-- opportunities moving through them, every move on record; the forecast is computed from
-- both (`GET /v1/analytics/forecast`).

-- Ordered stages. A deleted stage keeps its row (closed opportunities and the history still
-- name it) but leaves the order: its position becomes NULL. Live positions are 1, 2, 3 …
-- without gaps; the constraint is checked at commit, so a reorder can swap positions.
CREATE TABLE pipeline_stages (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,49}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position    integer CHECK (position >= 1),
    -- Win probability, in whole percent.
    probability integer NOT NULL CHECK (probability BETWEEN 0 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint NOT NULL DEFAULT 1,
    deleted_at  timestamptz,
    CHECK ((deleted_at IS NULL) = (position IS NOT NULL)),
    CONSTRAINT pipeline_stages_position_key UNIQUE (position) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO pipeline_stages (key, name, position, probability) VALUES
    ('lead', 'Lead', 1, 5),
    ('contacted', 'Contacted', 2, 10),
    ('qualified', 'Qualified', 3, 20),
    ('needs_analysis', 'Needs analysis', 4, 30),
    ('proposal', 'Proposal', 5, 50),
    ('negotiation', 'Negotiation', 6, 80);

-- A possible sale to a customer. Money in minor units of `currency`, as purchases.
CREATE TABLE opportunities (
    id                  uuid PRIMARY KEY DEFAULT uuid_v7(),
    customer_id         uuid NOT NULL REFERENCES customers (id),
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    amount              bigint NOT NULL CHECK (amount >= 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stage               text NOT NULL REFERENCES pipeline_stages (key),
    owner_id            uuid NOT NULL REFERENCES users (id),
    expected_close_date date NOT NULL,
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    close_reason        text CHECK (length(close_reason) BETWEEN 1 AND 500),
    closed_at           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             bigint NOT NULL DEFAULT 1,
    -- Soft delete: the row and its history stay for the audit trail.
    deleted_at          timestamptz,
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK (status <> 'open' OR close_reason IS NULL),
    CHECK (status <> 'lost' OR close_reason IS NOT NULL)
);

-- The foreign keys' indexes, each also serving its list filter in the default order
-- (soonest expected close first); the customer's list reads its own.
CREATE INDEX opportunities_customer_idx ON opportunities (customer_id, expected_close_date, id);
CREATE INDEX opportunities_owner_idx ON opportunities (owner_id, expected_close_date, id);
CREATE INDEX opportunities_stage_idx ON opportunities (stage, expected_close_date, id);
-- The other filters, and each sort of the list.
CREATE INDEX opportunities_status_idx ON opportunities (status, expected_close_date, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_currency_idx ON opportunities (currency, expected_close_date, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_expected_close_idx ON opportunities (expected_close_date, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_amount_idx ON opportunities (amount, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_created_idx ON opportunities (created_at, id) WHERE deleted_at IS NULL;
-- The forecast: won in a period by closing time, open by expected close date, each read
-- from the index alone.
CREATE INDEX opportunities_won_idx ON opportunities (closed_at) INCLUDE (currency, owner_id, stage, amount)
    WHERE status = 'won' AND deleted_at IS NULL;
CREATE INDEX opportunities_open_idx ON opportunities (expected_close_date) INCLUDE (currency, owner_id, stage, amount)
    WHERE status = 'open' AND deleted_at IS NULL;

-- Every creation, stage move and status change of an opportunity: from, to, when, who, why.
CREATE TABLE opportunity_stage_changes (
    id             uuid PRIMARY KEY DEFAULT uuid_v7(),
    opportunity_id uuid NOT NULL REFERENCES opportunities (id),
    from_stage     text,
    to_stage       text NOT NULL,
    from_status    text CHECK (from_status IN ('open', 'won', 'lost')),
    to_status      text NOT NULL CHECK (to_status IN ('open', 'won', 'lost')),
    changed_at     timestamptz NOT NULL DEFAULT now(),
    actor_type     text NOT NULL,
    actor_id       text NOT NULL,
    reason         text CHECK (length(reason) <= 500)
);
CREATE INDEX opportunity_stage_changes_opportunity_idx
    ON opportunity_stage_changes (opportunity_id, changed_at, id);
