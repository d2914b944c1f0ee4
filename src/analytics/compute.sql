-- Every live customer's figures as of now, in one statement (the definitions are in the
-- analytics module's docs), as the stored rows' JSON; only the rows that differ from the
-- stored ones (or have none) come out. $1: the time the figures are as of (timestamptz).
WITH s AS (
    SELECT currency, measure, window_days, key_percent, development_percent,
           maintenance_percent, high_value_percent, contact_days, churn_threshold,
           $1::timestamptz AS now_at,
           $1::timestamptz - make_interval(days => window_days) AS window_start,
           $1::timestamptz - make_interval(days => window_days) / 2 AS half_start
    FROM analytics_settings),
p AS (
    SELECT pu.customer_id,
           count(*) AS n_all,
           min(pu.occurred_at) AS first_at,
           max(pu.occurred_at) AS last_at,
           count(*) FILTER (WHERE pu.occurred_at > s.window_start) AS n_window,
           count(*) FILTER (WHERE pu.occurred_at > s.half_start) AS n_recent,
           count(*) FILTER (WHERE pu.occurred_at > s.window_start
                              AND pu.occurred_at <= s.half_start) AS n_earlier,
           count(*) FILTER (WHERE pu.occurred_at <= s.half_start) AS n_before,
           coalesce(sum(CASE WHEN s.measure = 'revenue' THEN pu.amount - pu.refunded
                             ELSE pu.amount - pu.refunded - pu.cost END)
                    FILTER (WHERE pu.occurred_at > s.window_start), 0)::bigint AS value
    FROM purchases pu CROSS JOIN s
    WHERE pu.currency = s.currency AND pu.occurred_at <= s.now_at
    GROUP BY pu.customer_id),
i AS (
    SELECT it.customer_id,
           max(it.occurred_at) FILTER (WHERE it.occurred_at <= s.now_at) AS last_contact_at,
           count(*) FILTER (WHERE it.status IN ('open', 'in_progress'))::int AS open_complaints
    FROM interactions it CROSS JOIN s
    WHERE it.deleted_at IS NULL
    GROUP BY it.customer_id),
base AS (
    SELECT c.id, c.lifecycle_stage,
           coalesce(p.value, 0) AS value,
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
    LEFT JOIN p ON p.customer_id = c.id
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
scored AS (
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
           f.nps AS latest_nps, f.csat AS latest_csat
    FROM flagged f CROSS JOIN s)
SELECT row_to_json(x)::text AS figures
FROM (SELECT g.*, r.at_risk_since
      FROM figures g CROSS JOIN s
      LEFT JOIN customer_analytics o ON o.customer_id = g.customer_id
      CROSS JOIN LATERAL (
          -- An episode of risk starts at the computation that first finds the customer at
          -- risk and lasts while they stay at risk.
          SELECT CASE WHEN g.churn_score >= s.churn_threshold
                      THEN coalesce(o.at_risk_since, s.now_at) END AS at_risk_since) r
      WHERE ROW(o.*) IS DISTINCT FROM ROW(g.*, r.at_risk_since)) x
