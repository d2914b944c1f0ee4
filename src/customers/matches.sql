-- The live customers a customer about to be written matches by the duplicate rules, with
-- each reason; every branch is an index lookup ($1 email, $2 phone, $3 address, $4 name,
-- $5 attributes, $6 external id, $7 the customer itself to leave out, $8 the owner an
-- owned-only caller is limited to, $9 the least name similarity).
SELECT m.id, m.reason, c.kind
FROM (
    SELECT id, 'email' AS reason FROM customers
    WHERE email_key = customer_email_key($1) AND deleted_at IS NULL
    UNION ALL
    SELECT id, 'phone' FROM customers
    WHERE $2::text IS NOT NULL AND phone = $2 AND deleted_at IS NULL
    UNION ALL
    SELECT id, 'name_address' FROM customers
    WHERE address_key = customer_address_key($3) AND deleted_at IS NULL
      AND similarity(lower(name), lower($4)) >= $9
    UNION ALL
    SELECT id, 'external_id' FROM customers
    WHERE external_id = ANY (customer_id_values($5)) AND deleted_at IS NULL
    UNION ALL
    SELECT id, 'external_id' FROM customers
    WHERE customer_id_values(attributes) <> '{}' AND deleted_at IS NULL
      AND customer_id_values(attributes)
          && (customer_id_values($5) || CASE WHEN $6::text IS NULL THEN '{}'::text[] ELSE ARRAY[$6::text] END)
) m
JOIN customers c ON c.id = m.id
WHERE m.id IS DISTINCT FROM $7
  AND ($8::uuid IS NULL OR c.account_manager_id = $8)
ORDER BY m.id, m.reason
