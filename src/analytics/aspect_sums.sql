-- The sums behind a customer's lifetime potential and demand contribution (DOMAIN.md
-- section 9), over a group `pu` of purchases (one customer's, in one currency), with the
-- times of `s`: the one definition that the value endpoint (value_aspects.sql) and the
-- analytics computation (compute.sql) both splice in. m is the value over the last 12
-- months (revenue: amount − refunded; profit: also − cost, over the purchases with a cost);
-- the window's net sales make the demand contribution; last year's buyers (a purchase 12
-- to 24 months ago) and whether they bought again since measure the retention rate.
sum(pu.amount - pu.refunded) FILTER (WHERE pu.occurred_at > s.year_start)::bigint
    AS year_revenue,
sum(pu.amount - pu.refunded - pu.cost)
    FILTER (WHERE pu.occurred_at > s.year_start AND pu.cost IS NOT NULL)::bigint
    AS year_profit,
coalesce(sum(pu.amount - pu.refunded) FILTER (WHERE pu.occurred_at > s.window_start), 0)
    ::bigint AS window_sales,
bool_or(pu.occurred_at > s.year_start) AS this_year,
bool_or(pu.occurred_at > s.two_years_start AND pu.occurred_at <= s.year_start) AS last_year
