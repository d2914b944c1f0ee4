-- Contacts: an individual customer (the person) linked to an organization customer, with
-- the person's title there, their buying roles in the organization's purchases (DOMAIN.md
-- section 9), whether they are the organization's primary contact, and when the link began
-- and ended. An ended link stays, as a past contact: people change jobs, and what they did
-- while there (interactions, opportunities) still names them.
--
-- One row per (organization, person): someone who comes back has their link reopened
-- (`ended_at` cleared). That the organization is an organization and the person an
-- individual is checked by the service (a kind can change later; the link stays as history).
CREATE TABLE contacts (
    id              uuid PRIMARY KEY DEFAULT uuid_v7(),
    organization_id uuid NOT NULL REFERENCES customers (id),
    person_id       uuid NOT NULL REFERENCES customers (id),
    title           text CHECK (length(title) BETWEEN 1 AND 200),
    buying_roles    text[] NOT NULL DEFAULT '{}' CHECK (buying_roles <@ ARRAY[
        'purchaser', 'user', 'technical_gatekeeper', 'financial_gatekeeper', 'decision_maker'
    ]::text[]),
    -- `primary` in the API (a reserved word in SQL).
    is_primary      boolean NOT NULL DEFAULT false,
    started_at      timestamptz NOT NULL DEFAULT now(),
    -- NULL while the link is current.
    ended_at        timestamptz,
    note            text CHECK (length(note) BETWEEN 1 AND 2000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1,
    CHECK (organization_id <> person_id),
    CHECK (ended_at IS NULL OR ended_at >= started_at),
    CONSTRAINT contacts_organization_person_key UNIQUE (organization_id, person_id)
);

-- At most one current primary contact per organization; past primaries stay marked as such.
CREATE UNIQUE INDEX contacts_one_primary_key ON contacts (organization_id)
    WHERE is_primary AND ended_at IS NULL;
-- An organization's contacts in the order they were linked (the list's cursor order); the
-- unique key above serves the lookup of one link and the foreign key's index.
CREATE INDEX contacts_organization_idx ON contacts (organization_id, id);
-- A person's organizations, in the order they were linked; the foreign key's index too.
CREATE INDEX contacts_person_idx ON contacts (person_id, id);
