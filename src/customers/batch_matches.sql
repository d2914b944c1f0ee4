-- The earlier customers of the same batch each customer about to be written matches by the
-- duplicate rules: the keys of matches.sql, computed by the same functions, compared within
-- the batch instead of against the stored customers. $1 the customers, a JSON array of
-- {i, kind, email, phone, address, name, attributes, external_id} in the batch's order; $2 the
-- least name similarity; $3 the most rows a key may have (the list's limit). One row per
-- reason that row `i` matches the earlier row `j` (j < i) of its kind.
--
-- A row is compared with few earlier rows, not with all: for each rule, the earliest earlier
-- row sharing its key (a window over the key, so a placeholder phone on every row costs a
-- sort, not every pair), and for a similar name at the same address the earliest similar one.
-- A key more than $3 rows of the batch hold (of any kind) is no evidence, as in the list and
-- against the stored customers: it matches nobody, so an address shared by a whole file
-- costs a count, not a comparison of every pair of names. Each pair found is then checked
-- against every rule, so that it carries all its reasons.
WITH keyed AS (
    SELECT x.i, x.kind, x.phone, lower(x.name) AS name, x.external_id,
           customer_email_key(x.email) AS email_key,
           customer_address_key(x.address) AS address_key,
           customer_id_values(x.attributes) AS id_values
    FROM jsonb_to_recordset($1) AS x (i int, kind text, email text, phone text, address jsonb,
                                      name text, attributes jsonb, external_id text)
),
-- Each key kept only where few enough rows hold it.
input AS (
    SELECT i, kind, name, external_id, id_values,
           CASE WHEN count(*) OVER (PARTITION BY email_key) <= $3 THEN email_key END AS email_key,
           CASE WHEN count(*) OVER (PARTITION BY phone) <= $3 THEN phone END AS phone,
           CASE WHEN count(*) OVER (PARTITION BY address_key) <= $3 THEN address_key END
               AS address_key
    FROM keyed
),
-- The ids a row carries: another system's (attributes ending in `_id`), and its own
-- external id (`own`). Two rows match on an id unless both hold it as their own external id
-- (the natural key, which a unique index keeps apart).
ids AS (
    SELECT i, kind, v, bool_and(own) AS own, count(*) OVER (PARTITION BY v) AS holders
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
    FROM ids WHERE holders <= $3 WINDOW w AS (PARTITION BY kind, v)
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
