-- The segment breakdown (src/analytics/store.rs segments()): every live customer (only
-- those $2 manages, when not NULL) counted once per dimension, in one scan (GROUPING SETS);
-- with $3, each group of organizations once, as its root. $1: the churn threshold.
-- The groups CTE and the ownership conditions are written out (groups_cte("$3") and
-- ownership::sql_condition, checked by a unit test) so that bench/analytics.sh can run the
-- statement by hand.
WITH RECURSIVE g(id, root_id, depth) AS (
    SELECT r.id, r.id, 1 FROM customers r
    WHERE $3 AND r.parent_id IS NULL
      AND r.id IN (SELECT parent_id FROM customers WHERE parent_id IS NOT NULL)
    UNION ALL
    SELECT c.id, g.root_id, g.depth + 1
    FROM g JOIN customers c ON c.parent_id = g.id
    WHERE g.depth < 10),
gv AS (
    SELECT g.root_id, coalesce(sum(a.value), 0)::bigint AS value,
           sum(a.year_value)::bigint AS year_value,
           coalesce(sum(a.window_sales), 0)::bigint AS window_sales
    FROM g JOIN customers m ON m.id = g.id
    LEFT JOIN customer_analytics a ON a.customer_id = g.id
    WHERE m.deleted_at IS NULL AND m.erased_at IS NULL AND ($2::uuid IS NULL OR m.id IN (SELECT id FROM customers WHERE account_manager_id = $2::uuid))
    GROUP BY g.root_id),
rc AS (
    SELECT referred_by_id AS id, count(*) AS n FROM customers
    WHERE referred_by_id IS NOT NULL AND deleted_at IS NULL
    GROUP BY referred_by_id),
c AS (
    SELECT coalesce(a.value_tier, 'none') AS value_tier,
           coalesce(a.value_class, 'none') AS value_class,
           c.lifecycle_stage, c.relationship_level,
           coalesce(l.tier_key, 'none') AS loyalty_tier,
           CASE WHEN a.value_tier = 'key'
                     AND (c.influential OR coalesce(rc.n, 0) >= st.influential_referrals)
                    THEN 'dual'
                WHEN a.value_tier = 'key' THEN 'high_value'
                WHEN c.influential OR coalesce(rc.n, 0) >= st.influential_referrals
                    THEN 'influential'
                ELSE 'none' END AS key_class,
           coalesce(a.loyalty_quadrant, 'none') AS loyalty_quadrant,
           coalesce(a.recommended_relationship_level, 'none')
               AS recommended_relationship_level,
           coalesce(c.buyer_type, 'none') AS buyer_type,
           coalesce(c.organization_type, 'none') AS organization_type,
           coalesce(c.credit->>'grade', 'none') AS credit_grade,
           -- A group's root stands for the group: its m and window sales are
           -- the group's sums, as its value is.
           CASE WHEN gv.root_id IS NULL THEN a.year_value ELSE gv.year_value END
               AS year_value,
           coalesce(gv.window_sales, a.window_sales, 0) AS window_sales,
           coalesce(gv.value, a.value, 0) AS value,
           coalesce(a.churn_score, 0) >= $1 AS at_risk,
           s.nps, s.csat
    FROM customers c
    CROSS JOIN analytics_settings st
    LEFT JOIN customer_analytics a ON a.customer_id = c.id
    LEFT JOIN loyalty_accounts l ON l.customer_id = c.id
    LEFT JOIN customer_satisfaction s ON s.customer_id = c.id
    LEFT JOIN rc ON rc.id = c.id
    LEFT JOIN gv ON gv.root_id = c.id
    WHERE c.deleted_at IS NULL AND c.erased_at IS NULL AND ($2::uuid IS NULL OR c.id IN (SELECT id FROM customers WHERE account_manager_id = $2::uuid))
      AND (NOT $3 OR c.parent_id IS NULL))
SELECT CASE WHEN GROUPING(value_tier) = 0 THEN 'value_tier'
            WHEN GROUPING(value_class) = 0 THEN 'value_class'
            WHEN GROUPING(lifecycle_stage) = 0 THEN 'lifecycle_stage'
            WHEN GROUPING(relationship_level) = 0 THEN 'relationship_level'
            WHEN GROUPING(key_class) = 0 THEN 'key_class'
            WHEN GROUPING(loyalty_tier) = 0 THEN 'loyalty_tier'
            WHEN GROUPING(loyalty_quadrant) = 0 THEN 'loyalty_quadrant'
            WHEN GROUPING(recommended_relationship_level) = 0
                THEN 'recommended_relationship_level'
            WHEN GROUPING(buyer_type) = 0 THEN 'buyer_type'
            WHEN GROUPING(organization_type) = 0 THEN 'organization_type'
            ELSE 'credit_grade' END AS dimension,
       coalesce(value_tier, value_class, lifecycle_stage, relationship_level,
                key_class, loyalty_tier, loyalty_quadrant,
                recommended_relationship_level, buyer_type, organization_type,
                credit_grade) AS key,
       count(*) AS customers,
       coalesce(sum(value), 0)::bigint AS value,
       coalesce(round(avg(value)), 0)::bigint AS mean_value,
       count(nps) AS nps_respondents,
       round(avg(nps), 2)::float8 AS mean_nps,
       round(100.0 * (count(*) FILTER (WHERE nps >= 9) - count(*) FILTER (WHERE nps <= 6))
             / nullif(count(nps), 0), 2)::float8 AS nps,
       count(csat) AS csat_respondents,
       round(avg(csat), 2)::float8 AS mean_csat,
       round(100.0 * count(*) FILTER (WHERE csat >= 4) / nullif(count(csat), 0), 2)::float8
           AS csat,
       count(*) FILTER (WHERE at_risk) AS at_risk,
       sum(year_value)::bigint AS year_value,
       coalesce(sum(window_sales), 0)::bigint AS window_sales
FROM c
GROUP BY GROUPING SETS ((value_tier), (value_class), (lifecycle_stage),
                        (relationship_level), (loyalty_tier), (key_class),
                        (loyalty_quadrant), (recommended_relationship_level),
                        (buyer_type), (organization_type), (credit_grade))
ORDER BY 1, 2
