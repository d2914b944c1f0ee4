-- The live customers each customer about to be written matches by the duplicate rules,
-- with each reason. $1 the customers, a JSON array of
-- {i, email, phone, address, name, attributes, external_id} (`i` names the one matched),
-- $2 a customer itself to leave out, $3 the owner an owned-only caller is limited to, $4
-- the least name similarity, $5 the most live customers a key may have with the new one
-- (the list's limit, `customer_duplicates_refresh`).
--
-- Each key is computed once, and each distinct key of the batch looked up once, by its
-- index, reading at most $5 holders: a key that $5 or more others hold already (a shared
-- mailbox, a switchboard, a building) is no evidence and matches nobody, as it makes no
-- pairs in the list. So a file of thousands of people at one address costs one bounded read
-- and no comparison of names, and a lookup the planner would rather make by scanning (a small
-- table of few addresses) compares stored keys, not keys computed row by row. Holders are
-- counted whoever manages them; the names are compared only at an address that is not
-- crowded.
WITH input AS (
    SELECT x.i, lower(x.name) AS name, x.phone,
           customer_email_key(x.email) AS email_key,
           customer_address_key(x.address) AS address_key,
           -- Ids another customer may hold as its own external id.
           customer_id_values(x.attributes) AS id_values,
           -- Ids another customer may hold under an attribute `*_id`.
           customer_id_values(x.attributes)
               || CASE WHEN x.external_id IS NULL THEN '{}'::text[] ELSE ARRAY[x.external_id] END
               AS carried
    FROM jsonb_to_recordset($1) AS x (i int, email text, phone text, address jsonb,
                                      name text, attributes jsonb, external_id text)
),
keys AS (
    SELECT 'email' AS rule, email_key AS key FROM input WHERE email_key IS NOT NULL
    UNION
    SELECT 'phone', phone FROM input WHERE phone IS NOT NULL
    UNION
    SELECT 'name_address', address_key FROM input WHERE address_key IS NOT NULL
    UNION
    SELECT 'external_id', v FROM input CROSS JOIN LATERAL unnest(id_values) AS v
    UNION
    SELECT 'attribute_id', v FROM input CROSS JOIN LATERAL unnest(carried) AS v
),
holders AS (
    SELECT k.rule, k.key, h.id, h.name, count(*) OVER (PARTITION BY k.rule, k.key) AS n
    FROM keys k
    CROSS JOIN LATERAL (
        (SELECT id, name FROM customers
         WHERE k.rule = 'email' AND email_key = k.key AND deleted_at IS NULL
           AND id IS DISTINCT FROM $2
         LIMIT $5)
        UNION ALL
        (SELECT id, name FROM customers
         WHERE k.rule = 'phone' AND phone = k.key AND deleted_at IS NULL
           AND id IS DISTINCT FROM $2
         LIMIT $5)
        UNION ALL
        (SELECT id, name FROM customers
         WHERE k.rule = 'name_address' AND address_key = k.key AND deleted_at IS NULL
           AND id IS DISTINCT FROM $2
         LIMIT $5)
        UNION ALL
        (SELECT id, name FROM customers
         WHERE k.rule = 'external_id' AND external_id = k.key AND deleted_at IS NULL
           AND id IS DISTINCT FROM $2
         LIMIT $5)
        UNION ALL
        (SELECT id, name FROM customers
         WHERE k.rule = 'attribute_id' AND customer_id_values(attributes) @> ARRAY[k.key]
           AND customer_id_values(attributes) <> '{}' AND deleted_at IS NULL
           AND id IS DISTINCT FROM $2
         LIMIT $5)
    ) h
),
roomy AS (
    SELECT rule, key, id, name FROM holders WHERE n < $5
),
matched AS (
    SELECT x.i, r.id, 'email' AS reason
    FROM input x JOIN roomy r ON r.rule = 'email' AND r.key = x.email_key
    UNION
    SELECT x.i, r.id, 'phone'
    FROM input x JOIN roomy r ON r.rule = 'phone' AND r.key = x.phone
    UNION
    SELECT x.i, r.id, 'name_address'
    FROM input x JOIN roomy r ON r.rule = 'name_address' AND r.key = x.address_key
    WHERE similarity(lower(r.name), x.name) >= $4
    UNION
    SELECT x.i, r.id, 'external_id'
    FROM input x CROSS JOIN LATERAL unnest(x.id_values) AS v
    JOIN roomy r ON r.rule = 'external_id' AND r.key = v
    UNION
    SELECT x.i, r.id, 'external_id'
    FROM input x CROSS JOIN LATERAL unnest(x.carried) AS v
    JOIN roomy r ON r.rule = 'attribute_id' AND r.key = v
)
SELECT m.i, m.id, m.reason, c.kind
FROM matched m
JOIN customers c ON c.id = m.id
WHERE $3::uuid IS NULL OR c.account_manager_id = $3
ORDER BY m.i, m.id, m.reason
