-- Sums the merged members' balances into the survivor's (its account exists by now) and
-- empties theirs, recording each balance moved: $1 the merge, $2 the survivor, $3 the
-- merged customers. Answers the points moved.
WITH o AS (
    SELECT customer_id, balance FROM loyalty_accounts
    WHERE customer_id = ANY ($3) AND balance <> 0
    FOR UPDATE
),
emptied AS (
    UPDATE loyalty_accounts a SET balance = 0, updated_at = now()
    FROM o WHERE a.customer_id = o.customer_id
    RETURNING o.customer_id, o.balance
),
total AS (SELECT coalesce(sum(balance), 0)::bigint AS n FROM emptied),
added AS (
    UPDATE loyalty_accounts SET balance = balance + (SELECT n FROM total), updated_at = now()
    WHERE customer_id = $2
    RETURNING 1
),
recorded AS (
    INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id, points)
    SELECT $1, 'loyalty_balance', customer_id, customer_id, balance FROM emptied
    RETURNING 1
)
SELECT n FROM total
