-- Likely duplicate pairs, best first. Candidates come from the keys' indexes only (see the
-- migration 2026-12-04-000050): each rule groups live customers by its key, and only keys
-- held by 2 to $9 customers make pairs (a key shared by hundreds is a shared mailbox or
-- switchboard, not a duplicate). Parameters: $1 the owner an owned-only caller is limited
-- to, $2 the reason asked for, $3–$5 the cursor (score, a, b), $6 the page size + 1,
-- $7 the least name similarity, $8 the weights (external_id, email, phone, name_address),
-- $9 the largest group.
WITH live AS NOT MATERIALIZED (
    SELECT id, kind, name, email_key, phone, address_key, attributes, external_id
    FROM customers
    WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR account_manager_id = $1)
),
email_keys AS (
    SELECT email_key AS k FROM live WHERE email_key IS NOT NULL
    GROUP BY 1 HAVING count(*) BETWEEN 2 AND $9
),
phone_keys AS (
    SELECT phone AS k FROM live WHERE phone IS NOT NULL
    GROUP BY 1 HAVING count(*) BETWEEN 2 AND $9
),
address_keys AS (
    SELECT address_key AS k FROM live WHERE address_key IS NOT NULL
    GROUP BY 1 HAVING count(*) BETWEEN 2 AND $9
),
pairs AS (
    SELECT a.id AS a, b.id AS b, 'email' AS reason
    FROM email_keys g
    JOIN live a ON a.email_key = g.k
    JOIN live b ON b.email_key = g.k
        AND b.id > a.id AND b.kind = a.kind
    UNION ALL
    SELECT a.id, b.id, 'phone'
    FROM phone_keys g
    JOIN live a ON a.phone = g.k
    JOIN live b ON b.phone = g.k AND b.id > a.id AND b.kind = a.kind
    UNION ALL
    SELECT a.id, b.id, 'name_address'
    FROM address_keys g
    JOIN live a ON a.address_key = g.k
    JOIN live b ON b.address_key = g.k AND b.id > a.id AND b.kind = a.kind
    WHERE similarity(lower(a.name), lower(b.name)) >= $7
    UNION ALL
    -- One's external id among the other's `*_id` attributes.
    SELECT least(a.id, b.id), greatest(a.id, b.id), 'external_id'
    FROM live a
    JOIN live b ON b.external_id = ANY (customer_id_values(a.attributes))
        AND b.id <> a.id AND b.kind = a.kind
    WHERE customer_id_values(a.attributes) <> '{}'
    UNION ALL
    -- The same id of another system in both.
    SELECT a.id, b.id, 'external_id'
    FROM live a
    JOIN live b ON customer_id_values(b.attributes) <> '{}'
        AND customer_id_values(b.attributes) && customer_id_values(a.attributes)
        AND b.id > a.id AND b.kind = a.kind
    WHERE customer_id_values(a.attributes) <> '{}'
),
scored AS (
    SELECT a, b, array_agg(DISTINCT reason ORDER BY reason) AS reasons,
           (100 - round(100
               * CASE WHEN bool_or(reason = 'external_id') THEN (100 - ($8::int[])[1]) / 100.0 ELSE 1 END
               * CASE WHEN bool_or(reason = 'email') THEN (100 - ($8::int[])[2]) / 100.0 ELSE 1 END
               * CASE WHEN bool_or(reason = 'phone') THEN (100 - ($8::int[])[3]) / 100.0 ELSE 1 END
               * CASE WHEN bool_or(reason = 'name_address') THEN (100 - ($8::int[])[4]) / 100.0 ELSE 1 END
           ))::bigint AS score
    FROM pairs
    GROUP BY a, b
)
SELECT s.score, s.reasons,
       ca.id AS a_id, ca.kind AS a_kind, ca.name AS a_name, ca.email AS a_email,
       ca.phone AS a_phone, ca.external_id AS a_external_id,
       ca.created_at AS a_created_at, ca.updated_at AS a_updated_at,
       cb.id AS b_id, cb.kind AS b_kind, cb.name AS b_name, cb.email AS b_email,
       cb.phone AS b_phone, cb.external_id AS b_external_id,
       cb.created_at AS b_created_at, cb.updated_at AS b_updated_at
FROM scored s
JOIN customers ca ON ca.id = s.a
JOIN customers cb ON cb.id = s.b
WHERE NOT EXISTS (SELECT 1 FROM customer_not_duplicates n
                  WHERE n.customer_a = s.a AND n.customer_b = s.b)
  AND ($2::text IS NULL OR $2 = ANY (s.reasons))
  AND ($3::bigint IS NULL
       OR s.score < $3 OR (s.score = $3 AND (s.a, s.b) > ($4::uuid, $5::uuid)))
ORDER BY s.score DESC, s.a, s.b
LIMIT $6
