-- Sales targets of the funnel: an amount to sell per owner (or the whole team, owner NULL),
-- period and currency. The forecast of the same period shows it with the gap left and the
-- coverage of that gap by the weighted open pipeline.
CREATE TABLE pipeline_targets (
    id          uuid PRIMARY KEY DEFAULT uuid_v7(),
    owner_id    uuid REFERENCES users (id),
    -- The period as given (`2026`, `2026-Q4`, `2026-11`) and its days, both included.
    period      text NOT NULL CHECK (length(period) BETWEEN 4 AND 7),
    period_from date NOT NULL,
    period_to   date NOT NULL CHECK (period_to >= period_from),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount      bigint NOT NULL CHECK (amount >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint NOT NULL DEFAULT 1
);
-- One target per owner (or team), period and currency; NULLS NOT DISTINCT makes the
-- team-wide one unique too. It also serves the forecast's look-up by period.
CREATE UNIQUE INDEX pipeline_targets_key ON pipeline_targets (period_from, period_to, currency, owner_id)
    NULLS NOT DISTINCT;
CREATE INDEX pipeline_targets_owner_idx ON pipeline_targets (owner_id);
