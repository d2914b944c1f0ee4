,
-- The periods: starts $4, ends $5 (the same length), in order.
periods AS (
    SELECT s AS starts, e AS ends, ord
    FROM unnest($4::timestamptz[], $5::timestamptz[]) WITH ORDINALITY AS p (s, e, ord)
),
-- Each lifecycle entry of a reachable customer, and when the next one replaced it.
spans AS (
    SELECT e.to_stage, e.changed_at,
           lead(e.changed_at) OVER (PARTITION BY e.customer_id
                                    ORDER BY e.changed_at, e.id) AS ended_at
    FROM customer_lifecycle_events e
    JOIN reach r ON r.id = e.customer_id
),
-- Active at a period's start: the customer's latest entry before it is an active stage.
active AS (
    SELECT p.ord, count(*) AS n
    FROM periods p
    JOIN spans s ON s.changed_at < p.starts AND (s.ended_at IS NULL OR s.ended_at >= p.starts)
    WHERE s.to_stage IN ('acquaintance', 'exploration', 'stable', 'commitment', 'dissolution')
    GROUP BY p.ord
)
-- Per period, or ($6) per period and reason code.
SELECT p.ord, (CASE WHEN $6 THEN w.reason_code END) AS reason_code,
       coalesce(max(a.n), 0) AS active_at_start,
       count(w.id) AS lost,
       count(w.won_back_at) AS won_back,
       round(percentile_cont(0.5) WITHIN GROUP (
                 ORDER BY extract(epoch FROM w.won_back_at - w.churned_at) / 86400)::numeric,
             2)::float8 AS median_days
FROM periods p
LEFT JOIN active a ON a.ord = p.ord
LEFT JOIN won w ON w.churned_at >= p.starts AND w.churned_at < p.ends
GROUP BY p.ord, (CASE WHEN $6 THEN w.reason_code END)
ORDER BY p.ord, 2
