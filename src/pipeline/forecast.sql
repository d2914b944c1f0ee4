-- The forecast of a period, per currency, per currency and owner, and per currency and
-- stage (grouping sets; `grp` 0, 1, 2): won opportunities closed in [$1, $2) (timestamps),
-- open ones expected to close in [$3, $4) (dates); only owner $5 and currency $6 when not
-- NULL; only the customers managed by $7 when not NULL (the code puts that condition in
-- place of the `owned` placeholder before preparing the statement).
WITH o AS (
    SELECT o.currency, o.owner_id, o.stage, o.amount, o.status = 'won' AS won,
           s.probability, s.position
    FROM opportunities o JOIN pipeline_stages s ON s.key = o.stage
    WHERE o.deleted_at IS NULL
      AND ((o.status = 'won' AND o.closed_at >= $1 AND o.closed_at < $2)
        OR (o.status = 'open' AND o.expected_close_date >= $3 AND o.expected_close_date < $4))
      AND ($5::uuid IS NULL OR o.owner_id = $5)
      AND ($6::text IS NULL OR o.currency = $6)
      AND {owned}
)
SELECT currency, owner_id, stage, probability,
       (CASE WHEN GROUPING(owner_id) = 0 THEN 1 WHEN GROUPING(stage) = 0 THEN 2 ELSE 0 END)::int AS grp,
       coalesce(sum(amount) FILTER (WHERE won), 0)::bigint AS won_amount,
       count(*) FILTER (WHERE won) AS won_count,
       coalesce(sum(amount) FILTER (WHERE NOT won), 0)::bigint AS open_pipeline,
       count(*) FILTER (WHERE NOT won) AS open_count,
       round(coalesce(sum(amount::numeric * probability) FILTER (WHERE NOT won), 0) / 100)::bigint
           AS weighted_open
FROM o
GROUP BY GROUPING SETS ((currency), (currency, owner_id), (currency, stage, probability, position))
ORDER BY currency, grp, position NULLS LAST, stage, owner_id
