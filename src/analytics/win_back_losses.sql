-- Each move into `churned` of a reachable live customer in [$1, $2) is one loss. Its
-- win-back is the first, after the loss and before the customer's next loss, of a purchase
-- or a move out of `churned` into an active stage. $3: owned-only access (the manager), or
-- NULL. Shared by the report's figures and its list (prefixed to both).
WITH reach AS (
    SELECT id, name FROM customers
    WHERE deleted_at IS NULL AND ($3::uuid IS NULL OR account_manager_id = $3::uuid)
),
losses AS (
    SELECT e.id, e.customer_id, r.name, e.changed_at AS churned_at, e.reason_code, e.reason,
           (SELECT min(n.changed_at) FROM customer_lifecycle_events n
            WHERE n.customer_id = e.customer_id AND n.to_stage = 'churned'
              AND (n.changed_at, n.id) > (e.changed_at, e.id)) AS next_loss
    FROM customer_lifecycle_events e
    JOIN reach r ON r.id = e.customer_id
    WHERE e.to_stage = 'churned' AND e.changed_at >= $1 AND e.changed_at < $2
),
won AS (
    SELECT l.*,
           least(
               (SELECT min(p.occurred_at) FROM purchases p
                WHERE p.customer_id = l.customer_id AND p.occurred_at > l.churned_at
                  AND (l.next_loss IS NULL OR p.occurred_at < l.next_loss)),
               (SELECT min(b.changed_at) FROM customer_lifecycle_events b
                WHERE b.customer_id = l.customer_id AND b.from_stage = 'churned'
                  AND b.to_stage IN ('acquaintance', 'exploration', 'stable', 'commitment',
                                     'dissolution')
                  AND b.changed_at > l.churned_at
                  AND (l.next_loss IS NULL OR b.changed_at < l.next_loss))
           ) AS won_back_at
    FROM losses l
)
