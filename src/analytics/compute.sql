-- Every live customer's figures as of now, in one statement (the definitions are in the
-- analytics module's docs), as the stored rows' JSON; only the rows that differ from the
-- stored ones (or have none) come out, then one row of the set-wide totals of the value
-- aspects (column `totals`). $1: the time the figures are as of (timestamptz).
WITH s AS (
    SELECT currency, measure, window_days, key_percent, development_percent,
           maintenance_percent, high_value_percent, contact_days, churn_threshold,
           few_customers_percent, medium_customers_percent, low_margin_percent,
           high_margin_percent, loyalty_periods, loyalty_period_days, loyal_percent,
           measure = 'profit' AS by_profit,
           $1::timestamptz AS now_at,
           $1::timestamptz - make_interval(days => window_days) AS window_start,
           $1::timestamptz - make_interval(days => window_days) / 2 AS half_start,
           $1::timestamptz - interval '12 months' AS year_start,
           $1::timestamptz - interval '24 months' AS two_years_start,
           $1::timestamptz - make_interval(days => loyalty_periods * loyalty_period_days)
               AS loyalty_start
    FROM analytics_settings),
p AS (
    SELECT pu.customer_id,
           count(*) AS n_all,
           min(pu.occurred_at) AS first_at,
           max(pu.occurred_at) AS last_at,
           -- The window's earlier half and the purchases before the recent half are the
           -- differences of these (window_start < half_start: window_days ≥ 28), read in
           -- `base` rather than counted: every aggregate here is a transition per purchase.
           count(*) FILTER (WHERE pu.occurred_at > s.window_start) AS n_window,
           count(*) FILTER (WHERE pu.occurred_at > s.half_start) AS n_recent,
           /*ASPECT_SUMS*/,
           -- The margin: the window's purchases with a cost (bigint_sum: a bigint state, not
           -- sum's numeric one; migration 2026-12-08-000011).
           bigint_sum(pu.amount - pu.refunded - pu.cost)
               FILTER (WHERE pu.occurred_at > s.window_start AND pu.cost IS NOT NULL)
               AS margin_profit,
           bigint_sum(pu.amount - pu.refunded)
               FILTER (WHERE pu.occurred_at > s.window_start AND pu.cost IS NOT NULL)
               AS margin_net,
           -- Loyalty: bit i set when a purchase was made i × days to (i + 1) × days ago (a
           -- plain aggregate, so the grouping stays one hash aggregation). The age in
           -- seconds as a float (`date_part`): `extract` gives a numeric, a division in
           -- software for every purchase of the loyalty periods.
           bit_or(1::bigint << floor(date_part('epoch', s.now_at - pu.occurred_at)
                                     / (s.loyalty_period_days * 86400))::int)
               FILTER (WHERE pu.occurred_at > s.loyalty_start) AS loyalty_bits
    FROM purchases pu CROSS JOIN s
    WHERE pu.currency = s.currency AND pu.occurred_at <= s.now_at
    GROUP BY pu.customer_id),
totals AS (
    -- Every buyer's, deleted and erased customers' too (they were sold), as the value
    -- endpoint counts them.
    SELECT coalesce(bigint_sum(p.window_sales), 0) AS all_sales,
           count(*) FILTER (WHERE p.last_year) AS last_year_buyers,
           count(*) FILTER (WHERE p.last_year AND p.last_at > s.year_start) AS retained
    FROM p CROSS JOIN s),
i AS (
    SELECT it.customer_id,
           max(it.occurred_at) FILTER (WHERE it.occurred_at <= s.now_at) AS last_contact_at,
           count(*) FILTER (WHERE it.status IN ('open', 'in_progress'))::int AS open_complaints
    FROM interactions it CROSS JOIN s
    WHERE it.deleted_at IS NULL
    GROUP BY it.customer_id),
base AS (
    SELECT c.id, c.lifecycle_stage, c.relationship_level,
           coalesce(p.value, 0) AS value,
           p.year_value, coalesce(p.window_sales, 0) AS window_sales,
           p.margin_profit, p.margin_net,
           coalesce(bit_count(p.loyalty_bits::bit(64)), 0)::int AS loyalty_periods_bought,
           coalesce(p.n_window, 0)::int AS n_window,
           coalesce(p.n_recent, 0)::int AS n_recent,
           coalesce(p.n_earlier, 0)::int AS n_earlier,
           p.n_all, p.n_before, p.first_at, p.last_at,
           CASE WHEN coalesce(p.n_window, 0) > 0
                THEN round(greatest(0, 3 * p.n_recent - p.n_earlier)::numeric * p.value
                           / p.n_window)::bigint
                ELSE 0 END AS future_value,
           i.last_contact_at,
           coalesce(i.open_complaints, 0) AS open_complaints,
           sat.nps, sat.csat,
           CASE WHEN sat.nps IS NULL AND sat.csat IS NULL THEN false
                WHEN sat.csat IS NULL OR (sat.nps IS NOT NULL AND sat.nps_at >= sat.csat_at)
                    THEN sat.nps <= 6
                ELSE sat.csat <= 3 END AS dissatisfied
    FROM customers c
    -- The value in the window: for revenue the window's net sales, for profit the margin's
    -- profit (a purchase without a cost adds nothing to either), read from those sums
    -- rather than summed again: every aggregate of p is a transition per purchase.
    LEFT JOIN (SELECT p.*,
                      coalesce(CASE WHEN (SELECT measure FROM s) = 'revenue' THEN p.window_sales
                                    ELSE p.margin_profit END, 0) AS value,
                      p.n_window - p.n_recent AS n_earlier, p.n_all - p.n_recent AS n_before
               FROM p) p ON p.customer_id = c.id
    LEFT JOIN i ON i.customer_id = c.id
    LEFT JOIN customer_satisfaction sat ON sat.customer_id = c.id
    WHERE c.deleted_at IS NULL AND c.erased_at IS NULL),
ranked AS (
    SELECT b.*,
           count(*) OVER () AS n,
           count(b.n_all) OVER () AS buyers,
           rank() OVER (ORDER BY b.value DESC) - 1 AS above,
           rank() OVER (ORDER BY b.future_value DESC) - 1 AS future_above,
           rank() OVER (PARTITION BY b.n_all IS NULL ORDER BY b.last_at) - 1 AS r_beaten,
           rank() OVER (PARTITION BY b.n_all IS NULL ORDER BY b.n_window) - 1 AS f_beaten,
           rank() OVER (PARTITION BY b.n_all IS NULL ORDER BY b.value) - 1 AS m_beaten
    FROM base b),
-- Materialized: the figures below read mean_interval, expected_recent and days_since (numeric
-- arithmetic on intervals) several times each, through the churn score, its reasons and the
-- at-risk episode; inlined, every reference computed them again (bench/README.md, the
-- guidance section: 0.4 s of CPU at 200 000 customers).
scored AS MATERIALIZED (
    SELECT r.*,
           r.value > 0 AND r.above * 100 < s.high_value_percent * r.n AS high_now,
           r.future_value > 0 AND r.future_above * 100 < s.high_value_percent * r.n AS high_future,
           CASE WHEN r.n_all >= 2
                THEN extract(epoch FROM r.last_at - r.first_at) / 86400 / (r.n_all - 1) END
               AS mean_interval,
           CASE WHEN r.n_before >= 2
                 AND r.first_at <= s.half_start - (s.now_at - s.half_start)
                THEN r.n_before * extract(epoch FROM s.now_at - s.half_start)
                     / extract(epoch FROM s.half_start - r.first_at) END AS expected_recent,
           extract(epoch FROM s.now_at - r.last_at) / 86400 AS days_since,
           r.lifecycle_stage NOT IN ('prospect', 'churned') AS eligible,
           r.last_contact_at IS NULL
               OR r.last_contact_at < s.now_at - make_interval(days => s.contact_days)
               AS no_contact
    FROM ranked r CROSS JOIN s),
flagged AS (
    SELECT x.*,
           x.eligible AND x.expected_recent IS NOT NULL
               AND x.n_recent * 2 < x.expected_recent AS falling,
           x.eligible AND CASE WHEN x.n_all >= 2 THEN x.days_since > greatest(2 * x.mean_interval, 1)
                               WHEN x.n_all = 1 THEN x.days_since > s.window_days
                               ELSE false END AS overdue,
           x.eligible AND x.no_contact AS no_contact_reason,
           x.eligible AND x.open_complaints > 0 AS complaints_reason,
           x.eligible AND x.dissatisfied AS dissatisfied_reason
    FROM scored x CROSS JOIN s),
figures AS (
    SELECT f.id AS customer_id, f.value, f.n_window AS purchases,
           f.n_recent AS purchases_recent, f.n_earlier AS purchases_earlier,
           CASE WHEN f.value <= 0 THEN 'opportunity'
                WHEN f.above * 100 < s.key_percent * f.n THEN 'key'
                WHEN f.above * 100 < s.development_percent * f.n THEN 'development'
                WHEN f.above * 100 < s.maintenance_percent * f.n THEN 'maintenance'
                ELSE 'opportunity' END AS value_tier,
           f.future_value,
           CASE WHEN f.high_now AND f.high_future THEN 'vip'
                WHEN f.high_future THEN 'improve'
                WHEN f.high_now THEN 'maintain'
                ELSE 'abandon' END AS value_class,
           f.last_at AS last_purchase_at,
           CASE WHEN f.n_all IS NOT NULL THEN (1 + 5 * f.r_beaten / f.buyers)::smallint END
               AS recency_score,
           CASE WHEN f.n_all IS NOT NULL THEN (1 + 5 * f.f_beaten / f.buyers)::smallint END
               AS frequency_score,
           CASE WHEN f.n_all IS NOT NULL THEN (1 + 5 * f.m_beaten / f.buyers)::smallint END
               AS monetary_score,
           least(100, f.falling::int * 25 + f.overdue::int * 25 + f.no_contact_reason::int * 15
                      + CASE WHEN f.complaints_reason THEN least(f.open_complaints, 2) * 15
                             ELSE 0 END
                      + f.dissatisfied_reason::int * 20)::smallint AS churn_score,
           array_remove(ARRAY[
               CASE WHEN f.falling THEN 'purchase_frequency_falling' END,
               CASE WHEN f.overdue THEN 'purchase_overdue' END,
               CASE WHEN f.no_contact_reason THEN 'no_recent_contact' END,
               CASE WHEN f.complaints_reason THEN 'open_complaints' END,
               CASE WHEN f.dissatisfied_reason THEN 'dissatisfied' END], NULL) AS churn_reasons,
           -- Rounded, so that a row whose figures did not change is not rewritten for the
           -- clock's sake (the prediction moves a little with every computation).
           round(f.mean_interval, 2)::float8 AS mean_interval_days,
           round(f.expected_recent, 2)::float8 AS expected_recent,
           f.last_contact_at, f.open_complaints,
           f.nps AS latest_nps, f.csat AS latest_csat,
           CASE WHEN s.by_profit THEN f.year_value ELSE coalesce(f.year_value, 0) END
               AS year_value,
           f.window_sales,
           CASE WHEN f.margin_net > 0
                THEN round(100 * f.margin_profit::numeric / f.margin_net, 2)::float8 END
               AS margin_percent,
           -- The course's matrix of customer count against margin: the level's rank is
           -- 1 + count (many 0, medium 1, few 2) + margin (low 0, medium 1, high 2), so
           -- many × low `basic` … few × high `partnership`; compared in integers (numeric:
           -- 100 × a bigint sum could leave the bigint range).
           CASE WHEN f.margin_net > 0 THEN
               1 + CASE WHEN f.value > 0 AND f.above * 100 < s.few_customers_percent * f.n THEN 2
                        WHEN f.value > 0 AND f.above * 100 < s.medium_customers_percent * f.n
                            THEN 1
                        ELSE 0 END
                 + CASE WHEN 100 * f.margin_profit::numeric
                                >= s.high_margin_percent * f.margin_net::numeric THEN 2
                        WHEN 100 * f.margin_profit::numeric
                                >= s.low_margin_percent * f.margin_net::numeric THEN 1
                        ELSE 0 END
           END AS level_rank,
           f.relationship_level,
           f.loyalty_periods_bought,
           100 * f.loyalty_periods_bought >= s.loyal_percent * s.loyalty_periods AS loyal
    FROM flagged f CROSS JOIN s)
SELECT row_to_json(y)::text AS figures, NULL::text AS totals
FROM figures g CROSS JOIN s
LEFT JOIN customer_analytics o ON o.customer_id = g.customer_id
CROSS JOIN LATERAL (
    -- An episode of risk starts at the computation that first finds the customer at risk
    -- and lasts while they stay at risk.
    SELECT CASE WHEN g.churn_score >= s.churn_threshold
                THEN coalesce(o.at_risk_since, s.now_at) END AS at_risk_since,
           (ARRAY['basic', 'reactive', 'accountable', 'proactive', 'partnership'])[g.level_rank]
               AS recommended_relationship_level,
           CASE WHEN g.value_tier IN ('key', 'development')
                THEN CASE WHEN g.loyal THEN 'large_loyal' ELSE 'large_disloyal' END
                ELSE CASE WHEN g.loyal THEN 'small_loyal' ELSE 'small_disloyal' END
           END AS loyalty_quadrant) r
-- The stored row's columns, in the table's order.
CROSS JOIN LATERAL (
    SELECT g.customer_id, g.value, g.purchases, g.purchases_recent, g.purchases_earlier,
           g.value_tier, g.future_value, g.value_class, g.last_purchase_at, g.recency_score,
           g.frequency_score, g.monetary_score, g.churn_score, g.churn_reasons,
           g.mean_interval_days, g.expected_recent, g.last_contact_at, g.open_complaints,
           g.latest_nps, g.latest_csat, r.at_risk_since, g.year_value, g.window_sales,
           g.margin_percent, r.recommended_relationship_level,
           coalesce(array_position(ARRAY['basic', 'reactive', 'accountable', 'proactive',
                                         'partnership'], g.relationship_level)
                    < g.level_rank, false) AS relationship_below_recommended,
           g.loyalty_periods_bought, r.loyalty_quadrant) y
WHERE ROW(o.*) IS DISTINCT FROM ROW(y.*)
UNION ALL
SELECT NULL, row_to_json(t)::text FROM totals t
