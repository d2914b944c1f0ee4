-- The loyalty programme's configuration (DOMAIN.md section 6): one programme, its tiers.

CREATE TABLE loyalty_program (
    -- One row: the programme.
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    currency             text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Earn `earn_points` points per `earn_per_amount` minor units, rounded as `rounding` says.
    earn_points          integer NOT NULL CHECK (earn_points BETWEEN 1 AND 1000000),
    earn_per_amount      bigint NOT NULL CHECK (earn_per_amount BETWEEN 1 AND 100000000),
    rounding             text NOT NULL CHECK (rounding IN ('down', 'nearest', 'up')),
    expiry               text NOT NULL CHECK (expiry IN ('never', 'after_days', 'end_of_month', 'end_of_year')),
    expiry_days          integer CHECK (expiry_days BETWEEN 1 AND 3650),
    qualification_basis  text NOT NULL CHECK (qualification_basis IN ('points_earned', 'amount_spent')),
    qualification_months integer NOT NULL CHECK (qualification_months BETWEEN 1 AND 120),
    downgrade            text NOT NULL CHECK (downgrade IN ('window_end', 'grace_period', 'never')),
    grace_days           integer CHECK (grace_days BETWEEN 1 AND 365),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- The configuration's version: tiers changes count too.
    version              bigint NOT NULL DEFAULT 1,
    CHECK ((expiry = 'after_days') = (expiry_days IS NOT NULL)),
    CHECK ((downgrade = 'grace_period') = (grace_days IS NOT NULL))
);
INSERT INTO loyalty_program (currency, earn_points, earn_per_amount, rounding, expiry,
                             qualification_basis, qualification_months, downgrade)
VALUES ('EUR', 1, 100, 'down', 'never', 'points_earned', 12, 'window_end');

-- Ordered tiers: a customer holds the highest whose threshold their qualifying sum reaches.
CREATE TABLE loyalty_tiers (
    key                text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,49}$'),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position           integer NOT NULL UNIQUE CHECK (position >= 0),
    threshold          bigint NOT NULL CHECK (threshold >= 0),
    multiplier_percent integer NOT NULL CHECK (multiplier_percent BETWEEN 0 AND 1000),
    benefits           text[] NOT NULL DEFAULT '{}'
);
