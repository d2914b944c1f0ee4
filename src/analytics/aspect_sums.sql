-- The sums behind a customer's lifetime potential and demand contribution (DOMAIN.md
-- section 9), over a group `pu` of purchases (one customer's, in one currency), with the
-- times and measure of `s`: the one definition that the value endpoint (value_aspects.sql)
-- and the analytics computation (compute.sql) both splice in. m is the value over the last
-- 12 months in the settings' measure (`s.by_profit`; revenue: amount − refunded; profit:
-- also − cost, over the purchases with a cost; NULL when no purchase counts), one sum
-- rather than both measures'; the window's net sales make the demand contribution; last
-- year's buyers (a purchase 12 to 24 months ago) measure the retention rate with whether
-- they bought again since (which each statement reads from what it has already: the
-- computation from the last purchase's time).
bigint_sum(pu.amount - pu.refunded - CASE WHEN s.by_profit THEN pu.cost ELSE 0 END)
    FILTER (WHERE pu.occurred_at > s.year_start AND (NOT s.by_profit OR pu.cost IS NOT NULL))
    ::bigint AS year_value,
coalesce(bigint_sum(pu.amount - pu.refunded) FILTER (WHERE pu.occurred_at > s.window_start), 0)
    ::bigint AS window_sales,
bool_or(pu.occurred_at > s.two_years_start AND pu.occurred_at <= s.year_start) AS last_year
