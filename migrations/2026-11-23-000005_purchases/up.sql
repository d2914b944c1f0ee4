-- Purchases (DOMAIN.md section 5): what the customer value figures and loyalty points are
-- computed from. Money is in the currency's minor unit (cents), as integers.

CREATE TABLE purchases (
    id           uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers (id),
    -- The till's receipt id or the shop's order number: re-sending it is harmless.
    external_ref text CHECK (length(external_ref) BETWEEN 1 AND 100),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount       bigint NOT NULL CHECK (amount >= 0),
    cost         bigint CHECK (cost >= 0),
    refunded     bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    occurred_at  timestamptz NOT NULL,
    channel      text CHECK (channel IN
                     ('phone', 'sms', 'email', 'visit', 'in_store', 'web', 'chat', 'social', 'mail', 'other')),
    -- [{sku, name, quantity, unit_price}], as the API shows them.
    items        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(items) = 'array'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      bigint NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX purchases_external_ref_key ON purchases (external_ref) WHERE external_ref IS NOT NULL;
-- A customer's purchases and timeline (also the foreign key's index); all purchases by time.
CREATE INDEX purchases_customer_idx ON purchases (customer_id, occurred_at, id);
CREATE INDEX purchases_occurred_idx ON purchases (occurred_at, id);

-- Each refund of a purchase, full or partial.
CREATE TABLE purchase_refunds (
    id          uuid PRIMARY KEY,
    purchase_id uuid NOT NULL REFERENCES purchases (id),
    amount      bigint NOT NULL CHECK (amount > 0),
    reason      text CHECK (length(reason) <= 500),
    refunded_at timestamptz NOT NULL DEFAULT now(),
    actor_type  text NOT NULL,
    actor_id    text NOT NULL
);
CREATE INDEX purchase_refunds_purchase_idx ON purchase_refunds (purchase_id, refunded_at, id);
