CREATE OR REPLACE FUNCTION customer_email_key(email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT replace(split_part(split_part(lower(email), '@', 1), '+', 1), '.', '')
        || '@' || split_part(lower(email), '@', 2)
$$;

CREATE OR REPLACE FUNCTION customer_address_key(address jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN nullif(btrim(address ->> 'postal_code'), '') IS NULL
          OR nullif(btrim(address ->> 'line1'), '') IS NULL THEN NULL
        ELSE lower(regexp_replace(btrim(address ->> 'postal_code'), '\s+', '', 'g'))
            || '|' || lower(regexp_replace(btrim(address ->> 'line1'), '\s+', ' ', 'g'))
    END
$$;

CREATE OR REPLACE FUNCTION customer_words(name text, organization_name text, email text)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT w ORDER BY w), '{}') FROM regexp_split_to_table(
        lower(coalesce(name, '') || ' ' || coalesce(organization_name, '') || ' ' ||
              split_part(coalesce(email, ''), '@', 1)),
        '[^[:alnum:]]+') AS w
    WHERE char_length(w) >= 2
$$;

CREATE OR REPLACE FUNCTION customer_id_values(attributes jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT v ORDER BY v), '{}')
    FROM (SELECT value #>> '{}' AS v
          FROM jsonb_each(CASE WHEN jsonb_typeof(attributes) = 'object'
                               THEN attributes ELSE '{}'::jsonb END)
          WHERE key LIKE '%\_id' AND jsonb_typeof(value) IN ('string', 'number')) ids
    WHERE btrim(v) <> ''
$$;

CREATE OR REPLACE FUNCTION loyalty_points(amount bigint, points integer, per_amount bigint,
                                          multiplier_percent integer, rounding text)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE rounding
        WHEN 'down' THEN floor(v / d)
        WHEN 'up' THEN ceil(v / d)
        ELSE floor((2 * v + d) / (2 * d))
    END::bigint
    FROM (SELECT amount::numeric * points * multiplier_percent AS v,
                 per_amount::numeric * 100 AS d) x
$$;

CREATE OR REPLACE FUNCTION loyalty_expiry(policy text, days integer, earned timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE policy
        WHEN 'after_days' THEN earned + make_interval(hours => days * 24)
        WHEN 'end_of_month' THEN
            (date_trunc('month', earned AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
        WHEN 'end_of_year' THEN
            (date_trunc('year', earned AT TIME ZONE 'UTC') + interval '1 year') AT TIME ZONE 'UTC'
    END
$$;
