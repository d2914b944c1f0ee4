-- One customer's (or a group's: $1 lists its customers) lifetime potential and demand contribution inputs, per currency they bought
-- in: m (their value over the last 12 months, as revenue and as profit), their net sales in
-- the analytics window and every customer's, and (when $3) the retention of the currency's
-- buyers: last year's (12 to 24 months ago) and those of them who bought again since.
WITH mine AS (
    SELECT currency,
           sum(amount - refunded) FILTER (WHERE occurred_at > now() - interval '12 months')
               ::bigint AS year_revenue,
           sum(amount - refunded - cost)
               FILTER (WHERE occurred_at > now() - interval '12 months' AND cost IS NOT NULL)
               ::bigint AS year_profit,
           coalesce(sum(amount - refunded)
               FILTER (WHERE occurred_at > now() - make_interval(days => $2)), 0)
               ::bigint AS window_sales
    FROM purchases
    WHERE customer_id = ANY($1)
    GROUP BY currency
),
totals AS (
    SELECT p.currency, sum(p.amount - p.refunded)::bigint AS all_sales
    FROM purchases p
    WHERE p.occurred_at > now() - make_interval(days => $2)
      AND p.currency IN (SELECT currency FROM mine)
    GROUP BY p.currency
),
buyers AS (
    SELECT p.currency, p.customer_id,
           bool_or(p.occurred_at > now() - interval '12 months') AS this_year
    FROM purchases p
    WHERE $3
      AND p.occurred_at > now() - interval '24 months'
      AND p.currency IN (SELECT currency FROM mine)
    GROUP BY p.currency, p.customer_id
    HAVING bool_or(p.occurred_at <= now() - interval '12 months')
),
retention AS (
    SELECT currency, count(*) AS last_year_buyers, count(*) FILTER (WHERE this_year) AS retained
    FROM buyers
    GROUP BY currency
)
SELECT m.currency, m.year_revenue, m.year_profit, m.window_sales,
       coalesce(t.all_sales, 0)::bigint AS all_sales,
       coalesce(r.last_year_buyers, 0)::bigint AS last_year_buyers,
       coalesce(r.retained, 0)::bigint AS retained
FROM mine m
LEFT JOIN totals t USING (currency)
LEFT JOIN retention r USING (currency)
