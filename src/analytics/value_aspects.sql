-- One customer's (or a group's: $1 lists its customers) lifetime potential and demand
-- contribution inputs, per currency they bought in (the sums of aspect_sums.sql): m (their
-- value over the last 12 months in the measure: profit when $4, else revenue), their net
-- sales in the analytics window and every customer's, and (when $3) the retention of the
-- currency's buyers: last year's (12 to 24 months ago) and those of them who bought again
-- since. $1 the customers, $2 the window in days.
WITH s AS (
    SELECT $4::bool AS by_profit,
           now() - interval '12 months' AS year_start,
           now() - interval '24 months' AS two_years_start,
           now() - make_interval(days => $2) AS window_start
),
mine AS (
    SELECT pu.currency, /*ASPECT_SUMS*/
    FROM purchases pu CROSS JOIN s
    WHERE pu.customer_id = ANY($1)
    GROUP BY pu.currency
),
everyone AS (
    SELECT pu.currency, /*ASPECT_SUMS*/,
           bool_or(pu.occurred_at > s.year_start) AS this_year
    FROM purchases pu CROSS JOIN s
    WHERE pu.occurred_at > least(s.window_start,
                                 CASE WHEN $3 THEN s.two_years_start ELSE s.window_start END)
      AND pu.currency IN (SELECT currency FROM mine)
    GROUP BY pu.currency, pu.customer_id
),
totals AS (
    SELECT currency, sum(window_sales)::bigint AS all_sales,
           count(*) FILTER (WHERE last_year) AS last_year_buyers,
           count(*) FILTER (WHERE last_year AND this_year) AS retained
    FROM everyone
    GROUP BY currency
)
SELECT m.currency, m.year_value, m.window_sales,
       coalesce(t.all_sales, 0)::bigint AS all_sales,
       (CASE WHEN $3 THEN coalesce(t.last_year_buyers, 0) ELSE 0 END)::bigint AS last_year_buyers,
       (CASE WHEN $3 THEN coalesce(t.retained, 0) ELSE 0 END)::bigint AS retained
FROM mine m
LEFT JOIN totals t USING (currency)
