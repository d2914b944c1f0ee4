-- Duplicate candidates kept on write (issue 23): the list of likely duplicates reads its page
-- from an index on the pairs, in score order, instead of grouping every live customer by each
-- key on every request (about 15 s at a million customers).
--
--  - customer_duplicate_links: one row per reason and key two live customers of the same kind
--    share (`email` key, E.164 `phone`, `name_address` key with names at least 50 % alike,
--    `external_id`: one's external id or an id of another system under an attribute `*_id`),
--    for keys held by 2 to 20 live customers (a key of more is a shared mailbox or
--    switchboard, and makes no pairs).
--  - customer_duplicate_pairs: the pairs, each with its reasons and score, indexed in the
--    list's order (best first, then ids).
--
-- Statement-level triggers on customers keep both in step with every write, bulk ones
-- (imports) included: from the rows a statement wrote, the keys they held before and hold
-- after; each such key's group of holders is read again (through the keys' indexes of
-- 2026-12-04-000050) and its links replaced; then the pairs those links touched. A key's
-- group is locked (a row of customer_duplicate_locks, by the key's hash) while it is read
-- and written, so that two transactions adding the two halves of a pair cannot both miss it.

-- The weights of customers::matching::weight, and a pair's score from its reasons:
-- 100 − 100 × Π (1 − weight/100), rounded half up (numeric: exact).
CREATE FUNCTION customer_duplicate_weight(reason text) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE reason
        WHEN 'external_id' THEN 95 WHEN 'email' THEN 90
        WHEN 'phone' THEN 80 WHEN 'name_address' THEN 70 END
$$;

CREATE FUNCTION customer_duplicate_score(reasons text[]) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (100 - round(100
        * CASE WHEN 'external_id' = ANY (reasons) THEN (100 - customer_duplicate_weight('external_id')) / 100.0 ELSE 1 END
        * CASE WHEN 'email' = ANY (reasons) THEN (100 - customer_duplicate_weight('email')) / 100.0 ELSE 1 END
        * CASE WHEN 'phone' = ANY (reasons) THEN (100 - customer_duplicate_weight('phone')) / 100.0 ELSE 1 END
        * CASE WHEN 'name_address' = ANY (reasons) THEN (100 - customer_duplicate_weight('name_address')) / 100.0 ELSE 1 END
    ))::int
$$;

-- A key of the duplicate rules.
CREATE TYPE customer_duplicate_key AS (reason text, key text);
CREATE TYPE customer_duplicate_pair AS (a uuid, b uuid);

-- The keys one customer row holds (nothing for a deleted one).
CREATE FUNCTION customer_duplicate_keys(c customers) RETURNS SETOF customer_duplicate_key
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT v.r, v.k
    FROM (VALUES ('email', c.email_key), ('phone', c.phone),
                 ('name_address', c.address_key), ('external_id', c.external_id)) v (r, k)
    WHERE c.deleted_at IS NULL AND v.k IS NOT NULL
    UNION ALL
    SELECT 'external_id', i FROM unnest(customer_id_values(c.attributes)) i
    WHERE c.deleted_at IS NULL AND c.attributes <> '{}'::jsonb
$$;

-- Where a key's group is locked: 65 536 rows, a key's by its hash.
CREATE TABLE customer_duplicate_locks (bucket int PRIMARY KEY);
INSERT INTO customer_duplicate_locks SELECT generate_series(0, 65535);

CREATE TABLE customer_duplicate_links (
    reason     text NOT NULL,
    key        text NOT NULL,
    customer_a uuid NOT NULL,
    customer_b uuid NOT NULL,
    PRIMARY KEY (reason, key, customer_a, customer_b),
    CHECK (customer_a < customer_b)
);
CREATE INDEX customer_duplicate_links_pair_idx ON customer_duplicate_links (customer_a, customer_b);

CREATE TABLE customer_duplicate_pairs (
    customer_a uuid NOT NULL,
    customer_b uuid NOT NULL,
    reasons    text[] NOT NULL,
    score      int NOT NULL,
    -- 100 − score: the list's order is (rank, customer_a, customer_b), one index range.
    rank       int NOT NULL GENERATED ALWAYS AS (100 - score) STORED,
    PRIMARY KEY (customer_a, customer_b),
    CHECK (customer_a < customer_b)
);
CREATE INDEX customer_duplicate_pairs_rank_idx
    ON customer_duplicate_pairs (rank, customer_a, customer_b);
CREATE INDEX customer_duplicate_pairs_b_idx ON customer_duplicate_pairs (customer_b);

-- Reads again the groups of `touched` keys and replaces their links, then the pairs whose
-- links changed.
-- JIT off: compiling these short statements would cost more than running them.
CREATE FUNCTION customer_duplicates_refresh(touched customer_duplicate_key[]) RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    affected customer_duplicate_pair[];
    made customer_duplicate_pair[];
BEGIN
    touched := ARRAY(SELECT (t.reason, t.key)::customer_duplicate_key
                     FROM unnest(touched) t GROUP BY t.reason, t.key);
    IF cardinality(touched) = 0 THEN
        RETURN;
    END IF;
    -- Buckets in order, so that two writers cannot deadlock on them.
    PERFORM 1 FROM customer_duplicate_locks
    WHERE bucket IN (SELECT (hashtext(t.reason || ':' || t.key) & 65535) FROM unnest(touched) t)
    ORDER BY bucket
    FOR UPDATE;

    WITH gone AS (
        DELETE FROM customer_duplicate_links l
        USING unnest(touched) t
        WHERE l.reason = t.reason AND l.key = t.key
        RETURNING l.customer_a, l.customer_b)
    SELECT coalesce(array_agg(DISTINCT (customer_a, customer_b)::customer_duplicate_pair), '{}')
    INTO affected FROM gone;

    -- Each key's live holders, at most 21 (enough to know that a group is too large).
    WITH holders AS (
        SELECT DISTINCT t.reason, t.key, h.id, h.kind, h.name
        FROM unnest(touched) t
        CROSS JOIN LATERAL (
            (SELECT c.id, c.kind, c.name FROM customers c
             WHERE t.reason = 'email' AND c.email_key = t.key AND c.deleted_at IS NULL
             LIMIT 21)
            UNION ALL
            (SELECT c.id, c.kind, c.name FROM customers c
             WHERE t.reason = 'phone' AND c.phone = t.key AND c.deleted_at IS NULL
             LIMIT 21)
            UNION ALL
            (SELECT c.id, c.kind, c.name FROM customers c
             WHERE t.reason = 'name_address' AND c.address_key = t.key AND c.deleted_at IS NULL
             LIMIT 21)
            UNION ALL
            (SELECT c.id, c.kind, c.name FROM customers c
             WHERE t.reason = 'external_id' AND c.external_id = t.key AND c.deleted_at IS NULL)
            UNION ALL
            (SELECT c.id, c.kind, c.name FROM customers c
             WHERE t.reason = 'external_id'
               AND customer_id_values(c.attributes) @> ARRAY[t.key]
               AND customer_id_values(c.attributes) <> '{}' AND c.deleted_at IS NULL
             LIMIT 21)
        ) h
    ),
    groups AS (
        SELECT reason, key FROM holders GROUP BY 1, 2 HAVING count(*) BETWEEN 2 AND 20
    ),
    linked AS (
        INSERT INTO customer_duplicate_links (reason, key, customer_a, customer_b)
        SELECT g.reason, g.key, a.id, b.id
        FROM groups g
        JOIN holders a ON a.reason = g.reason AND a.key = g.key
        JOIN holders b ON b.reason = g.reason AND b.key = g.key
            AND b.id > a.id AND b.kind = a.kind
        WHERE g.reason <> 'name_address' OR similarity(lower(a.name), lower(b.name)) >= 0.5
        RETURNING customer_a, customer_b)
    SELECT coalesce(array_agg(DISTINCT (customer_a, customer_b)::customer_duplicate_pair), '{}')
    INTO made FROM linked;

    SELECT coalesce(array_agg(DISTINCT p), '{}') INTO affected
    FROM unnest(affected || made) p;
    IF cardinality(affected) = 0 THEN
        RETURN;
    END IF;
    DELETE FROM customer_duplicate_pairs d
    USING unnest(affected) p
    WHERE d.customer_a = p.a AND d.customer_b = p.b;
    INSERT INTO customer_duplicate_pairs (customer_a, customer_b, reasons, score)
    SELECT l.customer_a, l.customer_b, array_agg(DISTINCT l.reason ORDER BY l.reason),
           customer_duplicate_score(array_agg(DISTINCT l.reason))
    FROM unnest(affected) p
    JOIN customer_duplicate_links l ON l.customer_a = p.a AND l.customer_b = p.b
    GROUP BY l.customer_a, l.customer_b;
END
$$;

CREATE FUNCTION customers_duplicates_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM customer_duplicates_refresh(
        (SELECT array_agg((k.reason, k.key)::customer_duplicate_key)
         FROM added n, customer_duplicate_keys(n) k));
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_duplicates_inserted AFTER INSERT ON customers
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION customers_duplicates_inserted();

-- Only rows whose keys, name, kind or liveness changed touch their groups.
CREATE FUNCTION customers_duplicates_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM customer_duplicates_refresh((
        SELECT array_agg((k.reason, k.key)::customer_duplicate_key)
        FROM before o JOIN after n ON n.id = o.id,
             LATERAL (SELECT * FROM customer_duplicate_keys(o)
                      UNION ALL SELECT * FROM customer_duplicate_keys(n)) k
        WHERE (o.email_key, o.phone, o.address_key, o.external_id, o.attributes, o.name,
               o.kind, o.deleted_at IS NULL)
              IS DISTINCT FROM
              (n.email_key, n.phone, n.address_key, n.external_id, n.attributes, n.name,
               n.kind, n.deleted_at IS NULL)));
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_duplicates_updated AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS before NEW TABLE AS after FOR EACH STATEMENT
    EXECUTE FUNCTION customers_duplicates_updated();

CREATE FUNCTION customers_duplicates_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM customer_duplicates_refresh(
        (SELECT array_agg((k.reason, k.key)::customer_duplicate_key)
         FROM removed o, customer_duplicate_keys(o) k));
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_duplicates_deleted AFTER DELETE ON customers
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION customers_duplicates_deleted();

-- The customers already here: every key any live customer holds with another.
SELECT customer_duplicates_refresh(ARRAY(
    SELECT DISTINCT (k.reason, k.key)::customer_duplicate_key
    FROM customers c, customer_duplicate_keys(c) k
    WHERE c.deleted_at IS NULL));
ANALYZE customer_duplicate_links;
ANALYZE customer_duplicate_pairs;
