-- The earlier customers of the same batch each customer about to be written matches by the
-- duplicate rules: the keys of matches.sql, computed by the same functions, compared within
-- the batch instead of against the stored customers. $1 the customers, a JSON array of
-- {i, kind, email, phone, address, name, attributes, external_id} in the batch's order; $2 the
-- least name similarity. One row per reason that row `i` matches the earlier row `j` (j < i)
-- of its kind.
--
-- A row is compared with few earlier rows, not with all: for each rule, the earliest earlier
-- row sharing its key (a window over the key, so a placeholder phone on every row costs a
-- sort, not every pair), and for a similar name at the same address the earliest similar one.
-- Each such pair is then checked against every rule, so that it carries all its reasons.
WITH input AS (
    SELECT x.i, x.kind, x.phone, lower(x.name) AS name, x.external_id,
           customer_email_key(x.email) AS email_key,
           customer_address_key(x.address) AS address_key,
           customer_id_values(x.attributes) AS id_values
    FROM jsonb_to_recordset($1) AS x (i int, kind text, email text, phone text, address jsonb,
                                      name text, attributes jsonb, external_id text)
),
-- The ids a row carries: another system's (attributes ending in `_id`), and its own
-- external id (`own`). Two rows match on an id unless both hold it as their own external id
-- (the natural key, which a unique index keeps apart).
ids AS (
    SELECT i, kind, v, bool_and(own) AS own
    FROM (SELECT i, kind, v, false AS own
          FROM input CROSS JOIN LATERAL unnest(id_values) AS v
          UNION ALL
          SELECT i, kind, external_id, true FROM input WHERE external_id IS NOT NULL) carried
    GROUP BY i, kind, v
),
candidates AS (
    SELECT i, min(i) OVER (PARTITION BY kind, email_key) AS j
    FROM input WHERE email_key IS NOT NULL
    UNION
    SELECT i, min(i) OVER (PARTITION BY kind, phone) FROM input WHERE phone IS NOT NULL
    UNION
    SELECT i, CASE WHEN own THEN min(i) FILTER (WHERE NOT own) OVER w ELSE min(i) OVER w END
    FROM ids WINDOW w AS (PARTITION BY kind, v)
    UNION
    SELECT b.i, min(a.i)
    FROM input a
    JOIN input b ON b.address_key = a.address_key AND b.kind = a.kind AND a.i < b.i
    WHERE similarity(a.name, b.name) >= $2
    GROUP BY b.i
)
SELECT c.i, c.j, r.reason
FROM (SELECT DISTINCT i, j FROM candidates WHERE j < i) c
JOIN input b ON b.i = c.i
JOIN input a ON a.i = c.j
CROSS JOIN LATERAL (VALUES
    ('email', a.email_key = b.email_key),
    ('phone', a.phone = b.phone),
    ('name_address', a.address_key = b.address_key AND similarity(a.name, b.name) >= $2),
    ('external_id', a.id_values && b.id_values OR a.external_id = ANY (b.id_values)
                    OR b.external_id = ANY (a.id_values))
) AS r (reason, hit)
WHERE r.hit
ORDER BY 1, 2, 3
