-- The losses themselves, oldest first, after the cursor ($4 time, $5 id), $6 of them.
SELECT id, customer_id, name, churned_at, reason_code, reason, won_back_at
FROM won
WHERE $4::timestamptz IS NULL OR (churned_at, id) > ($4::timestamptz, $5::uuid)
ORDER BY churned_at, id
LIMIT $6
