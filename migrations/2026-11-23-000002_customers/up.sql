-- Customers: the customer record (DOMAIN.md sections 1 and 2) and its lifecycle history.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE customers (
    id                  uuid PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('individual', 'organization')),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    organization_name   text,
    -- identifying data
    email               text,
    phone               text,
    -- {line1, line2, city, region, postal_code, country}, as the API shows it.
    address             jsonb CHECK (jsonb_typeof(address) = 'object'),
    -- demographic data
    region_type         text CHECK (region_type IN ('urban', 'rural')),
    birth_date          date,
    gender              text CHECK (gender IN ('female', 'male', 'non_binary', 'undisclosed')),
    occupation          text,
    income_band         text CHECK (income_band IN ('low', 'lower_middle', 'middle', 'upper_middle', 'high')),
    national_id         text,
    -- marketing data
    preferred_channel   text CHECK (preferred_channel IN ('phone', 'sms', 'email', 'visit', 'in_store', 'web', 'chat', 'social', 'mail', 'other')),
    consent_email       boolean NOT NULL DEFAULT false,
    consent_email_at    timestamptz,
    consent_sms         boolean NOT NULL DEFAULT false,
    consent_sms_at      timestamptz,
    tags                text[] NOT NULL DEFAULT '{}',
    -- overlay data
    attributes          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    source              text,
    external_id         text,
    -- the relationship
    account_manager_id  uuid REFERENCES users (id),
    lifecycle_stage     text NOT NULL DEFAULT 'prospect' CHECK (lifecycle_stage IN
                            ('prospect', 'acquaintance', 'exploration', 'stable', 'commitment', 'dissolution', 'churned')),
    relationship_level  text NOT NULL DEFAULT 'basic' CHECK (relationship_level IN
                            ('basic', 'reactive', 'accountable', 'proactive', 'partnership')),
    -- MAN qualification {money, authority, need}, each true or false.
    qualification       jsonb CHECK (jsonb_typeof(qualification) = 'object'),
    -- The MAN grade (DOMAIN.md section 2), derived here so that lists filter on it.
    prospect_grade      text GENERATED ALWAYS AS (
                            CASE
                                WHEN qualification IS NULL THEN NULL
                                WHEN (qualification ->> 'money')::boolean
                                     AND (qualification ->> 'authority')::boolean
                                     AND (qualification ->> 'need')::boolean THEN 'ideal'
                                WHEN NOT (qualification ->> 'money')::boolean
                                     AND NOT (qualification ->> 'authority')::boolean THEN 'not_a_prospect'
                                ELSE 'reachable'
                            END) STORED,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             bigint NOT NULL DEFAULT 1,
    deleted_at          timestamptz,
    erased_at           timestamptz
);

-- Natural keys.
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX customers_external_id_key ON customers (external_id) WHERE external_id IS NOT NULL;

-- Sorts (keyset pagination walks these; they also serve created/updated ranges).
CREATE INDEX customers_created_idx ON customers (created_at, id);
CREATE INDEX customers_updated_idx ON customers (updated_at, id);
CREATE INDEX customers_name_idx ON customers (lower(name), id);

-- Filters, on live customers, each ending in the default order.
-- Not partial: it is also the index of the foreign key.
CREATE INDEX customers_manager_idx ON customers (account_manager_id, created_at, id);
CREATE INDEX customers_stage_idx ON customers (lifecycle_stage, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_level_idx ON customers (relationship_level, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_kind_idx ON customers (kind, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_region_type_idx ON customers (region_type, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_source_idx ON customers (source, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_grade_idx ON customers (prospect_grade, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_consent_email_idx ON customers (created_at, id) WHERE consent_email AND deleted_at IS NULL;
CREATE INDEX customers_consent_sms_idx ON customers (created_at, id) WHERE consent_sms AND deleted_at IS NULL;
CREATE INDEX customers_no_email_idx ON customers (created_at, id) WHERE email IS NULL AND deleted_at IS NULL;
CREATE INDEX customers_no_phone_idx ON customers (created_at, id) WHERE phone IS NULL AND deleted_at IS NULL;
CREATE INDEX customers_deleted_idx ON customers (deleted_at, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX customers_tags_idx ON customers USING gin (tags) WHERE deleted_at IS NULL;
CREATE INDEX customers_attributes_idx ON customers USING gin (attributes jsonb_path_ops) WHERE deleted_at IS NULL;
-- What `q` searches, typo-tolerantly; the store uses the very same expression.
CREATE INDEX customers_search_idx ON customers USING gin ((lower(
    coalesce(name, '') || ' ' || coalesce(organization_name, '') || ' ' ||
    coalesce(email, '') || ' ' || coalesce(phone, ''))) gin_trgm_ops) WHERE deleted_at IS NULL;

-- Every change of lifecycle stage: from, to, when, who, why.
CREATE TABLE customer_lifecycle_events (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers (id),
    from_stage  text,
    to_stage    text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    actor_type  text NOT NULL,
    actor_id    text NOT NULL,
    reason      text
);
CREATE INDEX customer_lifecycle_events_customer_idx ON customer_lifecycle_events (customer_id, changed_at, id);
