-- The earlier customers of the same batch each customer about to be written matches by the
-- duplicate rules: the keys of matches.sql, computed by the same functions, compared within
-- the batch instead of against the stored customers. $1 the customers, a JSON array of
-- {i, email, phone, address, name, attributes, external_id} in the batch's order; $2 the least
-- name similarity. One row per reason that row `i` matches the earlier row `j` (j < i). Each
-- rule is an equality join on a key (hashed once per row), so no pair sharing no key is
-- compared: a batch costs about as much as its rows, not as its pairs.
WITH input AS (
    SELECT x.i, x.phone, x.name, x.external_id,
           customer_email_key(x.email) AS email_key,
           customer_address_key(x.address) AS address_key,
           customer_id_values(x.attributes) AS id_values
    FROM jsonb_to_recordset($1) AS x (i int, email text, phone text, address jsonb,
                                      name text, attributes jsonb, external_id text)
),
-- The ids a row carries: another system's (attributes ending in `_id`), and its own
-- external id. Two rows match on an id unless both are their own external ids (the natural
-- key, which a unique index keeps apart).
ids AS (
    SELECT i, v, false AS own FROM input CROSS JOIN LATERAL unnest(id_values) AS v
    UNION
    SELECT i, external_id, true FROM input WHERE external_id IS NOT NULL
)
SELECT b.i, a.i AS j, 'email' AS reason
FROM input a JOIN input b ON b.email_key = a.email_key AND a.i < b.i
UNION ALL
SELECT b.i, a.i, 'phone'
FROM input a JOIN input b ON b.phone = a.phone AND a.i < b.i
UNION ALL
SELECT b.i, a.i, 'name_address'
FROM input a JOIN input b ON b.address_key = a.address_key AND a.i < b.i
WHERE similarity(lower(a.name), lower(b.name)) >= $2
UNION ALL
SELECT DISTINCT b.i, a.i, 'external_id'
FROM ids a JOIN ids b ON b.v = a.v AND a.i < b.i AND NOT (a.own AND b.own)
ORDER BY 1, 2, 3
