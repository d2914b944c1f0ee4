-- Customer value analytics (DOMAIN.md sections 2 and 5): the settings they are computed
-- with, and each customer's latest computed figures.

CREATE TABLE analytics_settings (
    -- One row.
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- Purchases in this currency are the customers' value; others are left out.
    currency            text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    -- What a customer's value is: net revenue (amount − refunded) or profit (amount −
    -- refunded − cost, over purchases recorded with a cost).
    measure             text NOT NULL DEFAULT 'revenue' CHECK (measure IN ('revenue', 'profit')),
    -- The value window, in days, ending at the computation; its two halves give the trend.
    window_days         integer NOT NULL DEFAULT 365 CHECK (window_days BETWEEN 28 AND 3660),
    -- Value tiers: a customer with a positive value is `key` when fewer than key_percent %
    -- of customers rank strictly above them, else `development` under development_percent,
    -- else `maintenance` under maintenance_percent, else `opportunity`.
    key_percent         integer NOT NULL DEFAULT 5 CHECK (key_percent BETWEEN 1 AND 100),
    development_percent integer NOT NULL DEFAULT 20 CHECK (development_percent BETWEEN 1 AND 100),
    maintenance_percent integer NOT NULL DEFAULT 50 CHECK (maintenance_percent BETWEEN 1 AND 100),
    -- Value matrix: current or future value is high in the top high_value_percent %.
    high_value_percent  integer NOT NULL DEFAULT 20 CHECK (high_value_percent BETWEEN 1 AND 100),
    -- Churn risk: at risk from this score; no contact for contact_days is a reason.
    churn_threshold     integer NOT NULL DEFAULT 50 CHECK (churn_threshold BETWEEN 1 AND 100),
    contact_days        integer NOT NULL DEFAULT 90 CHECK (contact_days BETWEEN 1 AND 3660),
    -- Whether the computation moves customers at risk into `dissolution`.
    move_to_dissolution boolean NOT NULL DEFAULT false,
    -- The last computation, and the settings it used (its figures are read with them).
    computed_at         timestamptz,
    computed_with       jsonb,
    computed_customers  bigint,
    computed_ms         bigint,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             bigint NOT NULL DEFAULT 1,
    CHECK (key_percent < development_percent AND development_percent < maintenance_percent)
);
INSERT INTO analytics_settings DEFAULT VALUES;

-- Each live customer's figures as of the last computation (rows of customers deleted or
-- erased since are removed by the next one).
CREATE TABLE customer_analytics (
    customer_id          uuid PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    -- Value in the window (settings' measure and currency), purchases in it and in its halves.
    value                bigint NOT NULL,
    purchases            integer NOT NULL,
    purchases_recent     integer NOT NULL,
    purchases_earlier    integer NOT NULL,
    value_tier           text NOT NULL CHECK (value_tier IN ('key', 'development', 'maintenance', 'opportunity')),
    future_value         bigint NOT NULL,
    value_class          text NOT NULL CHECK (value_class IN ('vip', 'improve', 'maintain', 'abandon')),
    -- RFM: null for a customer who never bought in the currency.
    last_purchase_at     timestamptz,
    recency_score        smallint CHECK (recency_score BETWEEN 1 AND 5),
    frequency_score      smallint CHECK (frequency_score BETWEEN 1 AND 5),
    monetary_score       smallint CHECK (monetary_score BETWEEN 1 AND 5),
    -- Churn risk, 0–100, with its reasons and what they were computed from.
    churn_score          smallint NOT NULL CHECK (churn_score BETWEEN 0 AND 100),
    churn_reasons        text[] NOT NULL,
    mean_interval_days   double precision,
    expected_recent      double precision,
    last_contact_at      timestamptz,
    open_complaints      integer NOT NULL,
    latest_nps           smallint,
    latest_csat          smallint,
    -- The computation that first found the customer at risk in their current episode of
    -- risk (null when not at risk). The computation moves a customer into `dissolution` once
    -- per episode: one moved back by staff while still at risk stays where staff put them.
    at_risk_since        timestamptz
);
CREATE INDEX customer_analytics_tier_idx ON customer_analytics (value_tier);
CREATE INDEX customer_analytics_class_idx ON customer_analytics (value_class);
CREATE INDEX customer_analytics_rfm_idx ON customer_analytics (recency_score, frequency_score, monetary_score);
CREATE INDEX customer_analytics_churn_idx ON customer_analytics (churn_score DESC, customer_id);

-- Open complaints per customer, for churn risk.
CREATE INDEX interactions_customer_open_complaints_idx ON interactions (customer_id)
    WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL;
