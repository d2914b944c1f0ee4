-- Subsidiaries and referrals (issue 21).
--
-- `parent_id`: the organization an organization belongs to (its group). Only organizations
-- have one and only an organization can be one; the service checks both, and that no
-- chain of parents comes back to where it began (a cycle), under an advisory lock so that
-- two concurrent changes cannot close one between them. A group is at most 10 levels deep.
--
-- `referred_by_id`: the customer who brought this one (any kind, never itself). The
-- referrer's derived `referrals` count and `referred_value` are read through the index.
--
-- `influential`: set by hand, it makes a customer an influential key customer whatever
-- their referrals (DOMAIN.md section 9, 重点客户).
ALTER TABLE customers
    ADD COLUMN parent_id uuid REFERENCES customers (id),
    ADD COLUMN referred_by_id uuid REFERENCES customers (id),
    ADD COLUMN influential boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT customers_parent_not_self CHECK (parent_id <> id),
    ADD CONSTRAINT customers_referrer_not_self CHECK (referred_by_id <> id);

-- An organization's subsidiaries (the tree walks down through it); the foreign key's index.
CREATE INDEX customers_parent_idx ON customers (parent_id, id);
-- A customer's referrals (counted per referrer); the foreign key's index.
CREATE INDEX customers_referred_by_idx ON customers (referred_by_id, id);
-- The customers made influential by hand.
CREATE INDEX customers_influential_idx ON customers (id) WHERE influential;

-- From how many referrals a customer is an influential key customer.
ALTER TABLE analytics_settings
    ADD COLUMN influential_referrals integer NOT NULL DEFAULT 3
        CHECK (influential_referrals BETWEEN 1 AND 10000);
