-- The live customers each customer about to be written matches by the duplicate rules,
-- with each reason; every branch is an index lookup. $1 the customers, a JSON array of
-- {i, email, phone, address, name, attributes, external_id} (`i` names the one matched),
-- $2 a customer itself to leave out, $3 the owner an owned-only caller is limited to, $4
-- the least name similarity, $5 the most live customers a key may have with the new one
-- (the list's limit, `customer_duplicates_refresh`).
--
-- A key that $5 or more others hold already (a shared mailbox, a switchboard, a building)
-- is no evidence and matches nobody, as it makes no pairs in the list: each branch reads at
-- most $5 holders, so that a crowded key costs a bounded read, and the names at an address
-- are compared only when it is not crowded. Holders are counted whoever manages them.
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1) AS x (i int, email text, phone text, address jsonb,
                                              name text, attributes jsonb, external_id text)
)
SELECT x.i, m.id, m.reason, c.kind
FROM input x
CROSS JOIN LATERAL (
    SELECT h.id, h.reason
    FROM (
        SELECT b.id, b.reason, b.name, count(*) OVER (PARTITION BY b.branch) AS holders
        FROM (
            (SELECT id, 'email' AS reason, 1 AS branch, NULL::text AS name FROM customers
             WHERE email_key = customer_email_key(x.email) AND deleted_at IS NULL
               AND id IS DISTINCT FROM $2
             LIMIT $5)
            UNION ALL
            (SELECT id, 'phone', 2, NULL FROM customers
             WHERE x.phone IS NOT NULL AND phone = x.phone AND deleted_at IS NULL
               AND id IS DISTINCT FROM $2
             LIMIT $5)
            UNION ALL
            (SELECT id, 'name_address', 3, name FROM customers
             WHERE address_key = customer_address_key(x.address) AND deleted_at IS NULL
               AND id IS DISTINCT FROM $2
             LIMIT $5)
            UNION ALL
            (SELECT id, 'external_id', 4, NULL FROM customers
             WHERE external_id = ANY (customer_id_values(x.attributes)) AND deleted_at IS NULL
               AND id IS DISTINCT FROM $2
             LIMIT $5)
            UNION ALL
            (SELECT id, 'external_id', 5, NULL FROM customers
             WHERE customer_id_values(attributes) <> '{}' AND deleted_at IS NULL
               AND customer_id_values(attributes)
                   && (customer_id_values(x.attributes)
                       || CASE WHEN x.external_id IS NULL THEN '{}'::text[]
                               ELSE ARRAY[x.external_id] END)
               AND id IS DISTINCT FROM $2
             LIMIT $5)
        ) b
    ) h
    WHERE h.holders < $5
      AND (h.reason <> 'name_address' OR similarity(lower(h.name), lower(x.name)) >= $4)
) m
JOIN customers c ON c.id = m.id
WHERE $3::uuid IS NULL OR c.account_manager_id = $3
ORDER BY x.i, m.id, m.reason
