-- The sales progress (销售进展): dated advances that move a deal on (a demo, the decision
-- maker met, a trial …). An opportunity keeps the time of its latest advance, and of its
-- latest progress of any kind (creation, a stage move or status change, an advance), which
-- `GET /v1/opportunities?stalled_days=N` reads.
CREATE TABLE opportunity_advances (
    id             uuid PRIMARY KEY DEFAULT uuid_v7(),
    opportunity_id uuid NOT NULL REFERENCES opportunities (id),
    kind           text NOT NULL CHECK (kind ~ '^([a-z_]+|custom:[a-z][a-z0-9_]{0,49})$'),
    occurred_at    timestamptz NOT NULL,
    note           text CHECK (length(note) BETWEEN 1 AND 1000),
    actor_type     text NOT NULL,
    actor_id       text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX opportunity_advances_opportunity_idx
    ON opportunity_advances (opportunity_id, occurred_at, id);

ALTER TABLE opportunities
    ADD COLUMN last_advance_at timestamptz,
    ADD COLUMN last_progress_at timestamptz NOT NULL DEFAULT now();
UPDATE opportunities o
SET last_progress_at = coalesce(
    (SELECT max(changed_at) FROM opportunity_stage_changes c WHERE c.opportunity_id = o.id),
    o.created_at);

-- The stalled deals: open ones by their latest progress, oldest first.
CREATE INDEX opportunities_stalled_idx ON opportunities (last_progress_at, id)
    WHERE status = 'open' AND deleted_at IS NULL;
