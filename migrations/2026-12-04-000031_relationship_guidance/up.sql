-- Relationship and loyalty guidance (DOMAIN.md section 9): the settings of the recommended
-- relationship level (the course's matrix of customer count against margin), of the
-- callbacks after a sale, and of volume against loyalty; and each customer's figures of them,
-- computed with the others in the analytics computation.
ALTER TABLE analytics_settings
    -- The count axis: a customer is among the "few" when fewer than few_customers_percent %
    -- of customers have a strictly greater value, among a "medium" number under
    -- medium_customers_percent %, else among the "many".
    ADD COLUMN few_customers_percent integer NOT NULL DEFAULT 5
        CHECK (few_customers_percent BETWEEN 1 AND 100),
    ADD COLUMN medium_customers_percent integer NOT NULL DEFAULT 20
        CHECK (medium_customers_percent BETWEEN 1 AND 100),
    -- The margin axis: margin = profit ÷ net revenue of the window's purchases with a cost,
    -- in %; low under low_margin_percent, high from high_margin_percent.
    ADD COLUMN low_margin_percent integer NOT NULL DEFAULT 10
        CHECK (low_margin_percent BETWEEN 0 AND 100),
    ADD COLUMN high_margin_percent integer NOT NULL DEFAULT 30
        CHECK (high_margin_percent BETWEEN 1 AND 100),
    -- A callback (回访) due this many days after each purchase of a customer at the level;
    -- NULL: none at that level.
    ADD COLUMN callback_days_accountable integer DEFAULT 7
        CHECK (callback_days_accountable BETWEEN 1 AND 365),
    ADD COLUMN callback_days_proactive integer DEFAULT 7
        CHECK (callback_days_proactive BETWEEN 1 AND 365),
    ADD COLUMN callback_days_partnership integer DEFAULT 7
        CHECK (callback_days_partnership BETWEEN 1 AND 365),
    -- Loyalty: the share of the last loyalty_periods periods of loyalty_period_days days with
    -- a purchase; loyal from loyal_percent %.
    ADD COLUMN loyalty_periods integer NOT NULL DEFAULT 12
        CHECK (loyalty_periods BETWEEN 1 AND 60),
    ADD COLUMN loyalty_period_days integer NOT NULL DEFAULT 30
        CHECK (loyalty_period_days BETWEEN 1 AND 366),
    ADD COLUMN loyal_percent integer NOT NULL DEFAULT 50
        CHECK (loyal_percent BETWEEN 1 AND 100),
    -- The set-wide inputs of the value aspects as of the last computation: every customer's
    -- net sales in the window, and the currency's buyers of 12 to 24 months ago and those of
    -- them who bought again since.
    ADD COLUMN computed_all_sales bigint,
    ADD COLUMN computed_last_year_buyers bigint,
    ADD COLUMN computed_retained bigint,
    ADD CONSTRAINT analytics_settings_customer_count_order
        CHECK (few_customers_percent < medium_customers_percent),
    ADD CONSTRAINT analytics_settings_margin_order
        CHECK (low_margin_percent < high_margin_percent);

ALTER TABLE customer_analytics
    -- m of the lifetime potential: the value over the last 12 months in the measure (NULL
    -- for profit when none of those purchases has a cost); net sales in the window.
    ADD COLUMN year_value bigint,
    ADD COLUMN window_sales bigint NOT NULL DEFAULT 0,
    -- Margin of the window's purchases with a cost, in % (NULL without them).
    ADD COLUMN margin_percent double precision,
    ADD COLUMN recommended_relationship_level text
        CHECK (recommended_relationship_level IN ('basic', 'reactive', 'accountable',
                                                  'proactive', 'partnership')),
    -- Whether the customer's level was below the recommended one when computed.
    ADD COLUMN relationship_below_recommended boolean NOT NULL DEFAULT false,
    -- Of the last loyalty_periods periods, those with a purchase.
    ADD COLUMN loyalty_periods_bought integer NOT NULL DEFAULT 0,
    ADD COLUMN loyalty_quadrant text NOT NULL DEFAULT 'small_disloyal'
        CHECK (loyalty_quadrant IN ('large_loyal', 'large_disloyal', 'small_loyal',
                                    'small_disloyal'));

-- `relationship_below_recommended=true` reads the few flagged rows; `loyalty_quadrant=` its
-- quadrant's rows.
CREATE INDEX customer_analytics_below_idx ON customer_analytics (customer_id)
    WHERE relationship_below_recommended;
CREATE INDEX customer_analytics_quadrant_idx ON customer_analytics (loyalty_quadrant);

