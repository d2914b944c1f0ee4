-- The live customers each customer about to be written matches by the duplicate rules,
-- with each reason; every branch is an index lookup. $1 the customers, a JSON array of
-- {i, email, phone, address, name, attributes, external_id} (`i` names the one matched),
-- $2 a customer itself to leave out, $3 the owner an owned-only caller is limited to, $4
-- the least name similarity. One statement for a batch of an import as for one customer.
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1) AS x (i int, email text, phone text, address jsonb,
                                              name text, attributes jsonb, external_id text)
)
SELECT x.i, m.id, m.reason, c.kind
FROM input x
CROSS JOIN LATERAL (
    SELECT id, 'email' AS reason FROM customers
    WHERE email_key = customer_email_key(x.email) AND deleted_at IS NULL
    UNION ALL
    SELECT id, 'phone' FROM customers
    WHERE x.phone IS NOT NULL AND phone = x.phone AND deleted_at IS NULL
    UNION ALL
    SELECT id, 'name_address' FROM customers
    WHERE address_key = customer_address_key(x.address) AND deleted_at IS NULL
      AND similarity(lower(name), lower(x.name)) >= $4
    UNION ALL
    SELECT id, 'external_id' FROM customers
    WHERE external_id = ANY (customer_id_values(x.attributes)) AND deleted_at IS NULL
    UNION ALL
    SELECT id, 'external_id' FROM customers
    WHERE customer_id_values(attributes) <> '{}' AND deleted_at IS NULL
      AND customer_id_values(attributes)
          && (customer_id_values(x.attributes)
              || CASE WHEN x.external_id IS NULL THEN '{}'::text[] ELSE ARRAY[x.external_id] END)
) m
JOIN customers c ON c.id = m.id
WHERE m.id IS DISTINCT FROM $2
  AND ($3::uuid IS NULL OR c.account_manager_id = $3)
ORDER BY x.i, m.id, m.reason
