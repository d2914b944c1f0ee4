-- What each analytics computation keeps besides the customers' figures, so that the default
-- Pareto pages and the segment breakdown are read, not recomputed, per request
-- (src/analytics/mod.rs, recompute).
--
-- Two slots: a computation fills the slot the served computation does not use, then the
-- settings' `computed_at` moving to its time makes it the one served (a slot is served only
-- while its `computed_at` is the settings'). Emptying a slot is a TRUNCATE of its partition:
-- no dead rows, whatever the size of the ranking.

-- One kept ranking: the summary of the period's ranking by a measure, of customers
-- (`grouped` false) or of groups of organizations (true).
CREATE TABLE analytics_kept_rankings (
    slot             smallint NOT NULL CHECK (slot IN (0, 1)),
    -- 0 revenue, 1 revenue by group, 2 profit, 3 profit by group: the lines' key.
    ranking          smallint NOT NULL CHECK (ranking BETWEEN 0 AND 3),
    measure          text NOT NULL CHECK (measure IN ('revenue', 'profit')),
    grouped          boolean NOT NULL,
    currency         text NOT NULL,
    period_from      date NOT NULL,
    period_to        date NOT NULL,
    computed_at      timestamptz NOT NULL,
    customers        bigint NOT NULL,
    total            bigint NOT NULL,
    band_values      bigint[] NOT NULL,
    sales_customers  bigint[] NOT NULL,
    -- Element p (1 to 100): the last rank of the customers who make the first p % of the
    -- total (`top_sales_percent=p`), so that such a page is a rank range too.
    top_sales_ranks  bigint[] NOT NULL,
    PRIMARY KEY (slot, ranking)
);

-- The ranked lines of the kept rankings: a page is an index range on rank.
CREATE TABLE analytics_kept_lines (
    slot         smallint NOT NULL,
    ranking      smallint NOT NULL,
    rank         bigint NOT NULL,
    customer_id  uuid NOT NULL,
    value        bigint NOT NULL,
    purchases    bigint NOT NULL,
    cumulative   bigint NOT NULL,
    PRIMARY KEY (slot, ranking, rank)
) PARTITION BY LIST (slot);
CREATE TABLE analytics_kept_lines_0 PARTITION OF analytics_kept_lines FOR VALUES IN (0);
CREATE TABLE analytics_kept_lines_1 PARTITION OF analytics_kept_lines FOR VALUES IN (1);

-- The kept segment breakdown, of customers (`grouped` false) and of groups.
CREATE TABLE analytics_kept_segments (
    slot              smallint NOT NULL CHECK (slot IN (0, 1)),
    grouped           boolean NOT NULL,
    computed_at       timestamptz NOT NULL,
    dimension         text NOT NULL,
    key               text NOT NULL,
    customers         bigint NOT NULL,
    value             bigint NOT NULL,
    mean_value        bigint NOT NULL,
    nps_respondents   bigint NOT NULL,
    mean_nps          double precision,
    nps               double precision,
    csat_respondents  bigint NOT NULL,
    mean_csat         double precision,
    csat              double precision,
    at_risk           bigint NOT NULL,
    year_value        bigint,
    window_sales      bigint NOT NULL,
    PRIMARY KEY (slot, grouped, dimension, key)
);
