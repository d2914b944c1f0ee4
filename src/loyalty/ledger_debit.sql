-- Takes points from customers' lots, oldest expiring first (never-expiring lots last, the
-- lot $8 first when given), one `loyalty_ledger` entry per lot touched, and lowers their
-- balances; answers the new entries in order. $1, $2 the actor's type and id; $3, $4, $5
-- each debit's customer, posting and points wanted (positive); $6 the entries' kind; $7 the
-- purchase taken back (or NULL), $9 when it occurred and $10 the reason. The code puts the
-- ledger's columns and the balance update in place of their placeholders.
WITH req AS (SELECT * FROM unnest($3::uuid[], $4::uuid[], $5::bigint[])
             AS r(customer_id, posting_id, wanted)),
ordered AS (
    SELECT l.id, l.customer_id, l.expires_at, l.remaining, r.wanted, r.posting_id,
           sum(l.remaining) OVER (PARTITION BY l.customer_id
               ORDER BY COALESCE(l.id = $8, false) DESC, l.expires_at NULLS LAST,
                        l.earned_at, l.id) AS upto
    FROM loyalty_lots l JOIN req r ON r.customer_id = l.customer_id
    WHERE l.remaining > 0),
take AS MATERIALIZED (
    SELECT uuid_v7() AS entry_id, id, customer_id, expires_at, posting_id, upto,
           least(remaining, wanted - (upto - remaining)) AS points
    FROM ordered WHERE upto - remaining < wanted),
spent AS (UPDATE loyalty_lots l SET remaining = l.remaining - t.points
          FROM take t WHERE l.id = t.id),
entries AS (INSERT INTO loyalty_ledger (id, customer_id, posting_id, kind, points,
                lot_id, expires_at, purchase_id, qualifying_at, reason, occurred_at,
                actor_type, actor_id)
            SELECT entry_id, customer_id, posting_id, $6, -points, id, expires_at,
                   $7, $9, $10, now(), $1, $2 FROM take
            ORDER BY customer_id, upto
            RETURNING {ENTRY_COLUMNS}),
debits AS (SELECT customer_id, -points AS points FROM take),
{balances}
