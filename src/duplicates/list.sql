-- Likely duplicate pairs, best first: a range of the candidates' index
-- (customer_duplicate_pairs_rank_idx, kept on every write by the triggers of migration
-- 2026-12-05-000030), so that a page reads its pairs and a few more, at any number of
-- customers. Parameters: $1 the owner an owned-only caller is limited to (both customers
-- theirs), $2 the reason asked for, $3–$5 the cursor as (100 − score, a, b), the first
-- page's below every pair, $6 the page size + 1.
--
-- With a reason, `store::list` runs this text with the reason written in (the condition on
-- $2 below), so that the planner reads that reason's own partial index in the same order
-- (migration 2026-12-07-000001) instead of walking every better-scored pair.
SELECT p.score::bigint AS score, p.reasons,
       ca.id AS a_id, ca.kind AS a_kind, ca.name AS a_name, ca.email AS a_email,
       ca.phone AS a_phone, ca.external_id AS a_external_id,
       ca.created_at AS a_created_at, ca.updated_at AS a_updated_at,
       cb.id AS b_id, cb.kind AS b_kind, cb.name AS b_name, cb.email AS b_email,
       cb.phone AS b_phone, cb.external_id AS b_external_id,
       cb.created_at AS b_created_at, cb.updated_at AS b_updated_at
FROM customer_duplicate_pairs p
JOIN customers ca ON ca.id = p.customer_a
JOIN customers cb ON cb.id = p.customer_b
WHERE (p.rank, p.customer_a, p.customer_b) > ($3::int, $4::uuid, $5::uuid)
  AND ($2::text IS NULL OR $2 = ANY (p.reasons))
  AND ($1::uuid IS NULL OR (ca.account_manager_id = $1 AND cb.account_manager_id = $1))
  AND ca.deleted_at IS NULL AND cb.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM customer_not_duplicates n
                  WHERE n.customer_a = p.customer_a AND n.customer_b = p.customer_b)
ORDER BY p.rank, p.customer_a, p.customer_b
LIMIT $6
