-- Duplicates (issue 23): the keys likely duplicates share (each behind an index, so that
-- candidates come from index lookups and never from comparing every pair), the pairs staff
-- marked as not duplicates, and merges: what each moved, so that it can be undone, and the
-- tombstones that point from a merged customer to the survivor.

-- An email's matching key: lower case, the local part without dots and without a `+tag`
-- (`Ada.Lovelace+news@Example.com` → `adalovelace@example.com`).
CREATE FUNCTION customer_email_key(email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT replace(split_part(split_part(lower(email), '@', 1), '+', 1), '.', '')
        || '@' || split_part(lower(email), '@', 2)
$$;

-- An address's matching key: the postal code without spaces and the street line with its
-- spaces collapsed, lower case; null unless both are given.
CREATE FUNCTION customer_address_key(address jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN nullif(btrim(address ->> 'postal_code'), '') IS NULL
          OR nullif(btrim(address ->> 'line1'), '') IS NULL THEN NULL
        ELSE lower(regexp_replace(btrim(address ->> 'postal_code'), '\s+', '', 'g'))
            || '|' || lower(regexp_replace(btrim(address ->> 'line1'), '\s+', ' ', 'g'))
    END
$$;

-- The ids another system gave a customer: the values of its attributes whose key ends in
-- `_id` (`hubspot_id`, `salesforce_id`), sorted, without blanks.
CREATE FUNCTION customer_id_values(attributes jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT v ORDER BY v), '{}')
    FROM (SELECT value #>> '{}' AS v
          FROM jsonb_each(CASE WHEN jsonb_typeof(attributes) = 'object'
                               THEN attributes ELSE '{}'::jsonb END)
          WHERE key LIKE '%\_id' AND jsonb_typeof(value) IN ('string', 'number')) ids
    WHERE btrim(v) <> ''
$$;

-- The keys stored beside the row (like `search_words`, read by SQL only), so that grouping
-- the customers by key reads an index instead of recomputing every row's key.
ALTER TABLE customers
    ADD COLUMN email_key text GENERATED ALWAYS AS (customer_email_key(email)) STORED,
    ADD COLUMN address_key text GENERATED ALWAYS AS (customer_address_key(address)) STORED;

CREATE INDEX customers_email_key_idx ON customers (email_key, id)
    WHERE email_key IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX customers_phone_idx ON customers (phone, id)
    WHERE phone IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX customers_address_key_idx ON customers (address_key, id)
    WHERE address_key IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX customers_id_values_idx ON customers USING gin (customer_id_values(attributes))
    WITH (fastupdate = off) WHERE customer_id_values(attributes) <> '{}' AND deleted_at IS NULL;
-- The few customers that carry another system's ids: where the `external_id` rule starts
-- (computing the ids of every customer would read them all).
CREATE INDEX customers_with_id_values_idx ON customers (id)
    WHERE customer_id_values(attributes) <> '{}' AND deleted_at IS NULL;
CREATE INDEX customers_live_external_id_idx ON customers (external_id)
    WHERE external_id IS NOT NULL AND deleted_at IS NULL;

-- The opportunities a merged contact person is named in (a merge renames them).
CREATE INDEX opportunities_contact_ids_idx ON opportunities USING gin (contact_ids)
    WHERE contact_ids <> '{}';

-- Pairs staff said are two people: never listed as duplicates again. `customer_a` is the
-- smaller id.
CREATE TABLE customer_not_duplicates (
    customer_a uuid NOT NULL REFERENCES customers (id),
    customer_b uuid NOT NULL REFERENCES customers (id),
    marked_at  timestamptz NOT NULL DEFAULT now(),
    actor_type text NOT NULL,
    actor_id   text NOT NULL,
    PRIMARY KEY (customer_a, customer_b),
    CHECK (customer_a < customer_b)
);
CREATE INDEX customer_not_duplicates_b_idx ON customer_not_duplicates (customer_b);

-- One merge: the survivor, the customers merged into it, and what the undo needs.
CREATE TABLE customer_merges (
    id               uuid PRIMARY KEY,
    survivor_id      uuid NOT NULL REFERENCES customers (id),
    merged_ids       uuid[] NOT NULL,
    -- The survivor's and the merged customers' rows as they were (to_jsonb of each).
    before           jsonb NOT NULL,
    -- The survivor's satisfaction and attribute answers as they were (derived rows).
    survivor_derived jsonb NOT NULL,
    -- Whether the merge opened the survivor's loyalty account.
    opened_account   boolean NOT NULL,
    -- The survivor's version the merge left: an unmerge needs it unchanged.
    survivor_version bigint NOT NULL,
    -- What the answer reported: counts moved and kept.
    report           jsonb NOT NULL,
    merged_at        timestamptz NOT NULL,
    actor_type       text NOT NULL,
    actor_id         text NOT NULL,
    unmerged_at      timestamptz
);
CREATE INDEX customer_merges_survivor_idx ON customer_merges (survivor_id, merged_at);

-- Each row a merge moved, with the customer it came from: the undo moves exactly these back.
-- `kind` names the table and column; `points` is the balance moved (kind `loyalty_balance`),
-- or 1 for a contact link that lost its primary flag (the survivor had a primary contact).
CREATE TABLE customer_merge_moves (
    merge_id uuid NOT NULL REFERENCES customer_merges (id),
    kind     text NOT NULL,
    row_id   uuid NOT NULL,
    from_id  uuid NOT NULL REFERENCES customers (id),
    points   bigint,
    PRIMARY KEY (merge_id, kind, row_id, from_id)
);
CREATE INDEX customer_merge_moves_from_idx ON customer_merge_moves (from_id);

-- A merged customer: deleted, and pointing to the customer it was merged into.
CREATE TABLE customer_tombstones (
    customer_id uuid PRIMARY KEY REFERENCES customers (id),
    survivor_id uuid NOT NULL REFERENCES customers (id),
    merge_id    uuid NOT NULL REFERENCES customer_merges (id)
);
CREATE INDEX customer_tombstones_survivor_idx ON customer_tombstones (survivor_id);
CREATE INDEX customer_tombstones_merge_idx ON customer_tombstones (merge_id);
