-- Loyalty points and tiers (DOMAIN.md section 6): an account per member, expiry lots, the
-- append-only ledger and the tier history.

-- A time-ordered UUID (version 7) made in SQL, for rows written set-wise.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
        substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

-- Points earned on `amount` minor units: `points` per `per_amount`, times the tier's
-- multiplier in percent, rounded as the programme says. Exact (numeric), the one formula.
CREATE FUNCTION loyalty_points(amount bigint, points integer, per_amount bigint,
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

-- When points earned at `earned` expire by the programme's policy (null: never). Days are
-- 24 hours; months and years are calendar ones in UTC (`end_of_month` points lapse at the
-- first instant of the next month, UTC), whatever the session's time zone.
CREATE FUNCTION loyalty_expiry(policy text, days integer, earned timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE policy
        WHEN 'after_days' THEN earned + make_interval(hours => days * 24)
        WHEN 'end_of_month' THEN
            (date_trunc('month', earned AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
        WHEN 'end_of_year' THEN
            (date_trunc('year', earned AT TIME ZONE 'UTC') + interval '1 year') AT TIME ZONE 'UTC'
    END
$$;

-- The start of a qualification window of `months` calendar months (UTC) ending at `at`.
CREATE FUNCTION loyalty_window_start(at timestamptz, months integer)
RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ((at AT TIME ZONE 'UTC') - make_interval(months => months)) AT TIME ZONE 'UTC'
$$;

-- A member of the programme: their balance (the sum of their ledger, kept in step under
-- the account's row lock) and tier.
CREATE TABLE loyalty_accounts (
    customer_id  uuid PRIMARY KEY REFERENCES customers (id),
    balance      bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    -- A key of loyalty_tiers (no foreign key: tiers are replaced as a whole; an account on a
    -- removed tier moves at its next evaluation). Null while the programme has no tiers.
    tier_key     text,
    tier_since   timestamptz,
    -- When an evaluation first found the qualifying sum below the tier's threshold (the
    -- grace period runs from here); null while it is not below.
    below_since  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Members by tier (the simulation's and the segments' count).
CREATE INDEX loyalty_accounts_tier_idx ON loyalty_accounts (tier_key);

-- Points credited together (an earn, an adjustment up), spent oldest-expiring first.
CREATE TABLE loyalty_lots (
    -- The id of the ledger entry that credited the lot.
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES loyalty_accounts (customer_id),
    earned_at   timestamptz NOT NULL,
    expires_at  timestamptz,
    points      bigint NOT NULL CHECK (points > 0),
    remaining   bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points)
);
-- A member's lots in spending order (also the foreign key's index).
CREATE INDEX loyalty_lots_customer_idx ON loyalty_lots (customer_id, expires_at, earned_at, id);
-- Lots that lapse: the expiry pass.
CREATE INDEX loyalty_lots_expiring_idx ON loyalty_lots (expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;

-- The append-only ledger: one row per change of a lot.
CREATE TABLE loyalty_ledger (
    id            uuid PRIMARY KEY,
    -- The order entries were written in (the ledger's pages).
    seq           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id   uuid NOT NULL REFERENCES loyalty_accounts (customer_id),
    -- The entries one request wrote (a redemption across three lots: three entries).
    posting_id    uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('earn', 'redeem', 'adjust', 'expire', 'reverse')),
    points        bigint NOT NULL CHECK (points <> 0),
    lot_id        uuid NOT NULL REFERENCES loyalty_lots (id),
    expires_at    timestamptz,
    purchase_id   uuid REFERENCES purchases (id),
    -- For earn and reverse: when the purchase occurred (what the qualification window counts).
    qualifying_at timestamptz,
    reason        text CHECK (length(reason) BETWEEN 1 AND 500),
    occurred_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    actor_type    text NOT NULL,
    actor_id      text NOT NULL,
    -- Earning credits, adjusting goes either way, everything else debits.
    CHECK (CASE kind WHEN 'earn' THEN points > 0 WHEN 'adjust' THEN true ELSE points < 0 END),
    CHECK ((kind IN ('earn', 'reverse')) = (purchase_id IS NOT NULL AND qualifying_at IS NOT NULL))
);
CREATE INDEX loyalty_ledger_customer_idx ON loyalty_ledger (customer_id, seq);
CREATE INDEX loyalty_ledger_lot_idx ON loyalty_ledger (lot_id);
CREATE INDEX loyalty_ledger_purchase_idx ON loyalty_ledger (purchase_id);
-- Points earned in a qualification window.
CREATE INDEX loyalty_ledger_qualifying_idx ON loyalty_ledger (customer_id, qualifying_at)
    INCLUDE (points) WHERE qualifying_at IS NOT NULL;

-- Every change of tier, with why.
CREATE TABLE loyalty_tier_changes (
    id           uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES loyalty_accounts (customer_id),
    from_tier    text,
    to_tier      text,
    -- `moved`: the member's tier left the programme.
    direction    text NOT NULL CHECK (direction IN ('up', 'down', 'moved')),
    reason       text NOT NULL CHECK (reason IN
                     ('qualified', 'below_threshold', 'grace_period_ended', 'tier_removed')),
    -- The figures the decision was made on.
    basis        text NOT NULL,
    qualifying   bigint NOT NULL,
    threshold    bigint,
    window_from  timestamptz NOT NULL,
    window_to    timestamptz NOT NULL,
    changed_at   timestamptz NOT NULL,
    -- The configuration's version the evaluation ran with.
    config_version bigint NOT NULL
);
CREATE INDEX loyalty_tier_changes_customer_idx ON loyalty_tier_changes (customer_id, changed_at, id);
