-- Buying roles in the sale (issue 21): the people an opportunity is worked with, and who was
-- spoken to in an interaction with an organization.
--
-- An opportunity's `contact_ids` are individual customers linked (now or once) to its
-- customer organization, checked by the service when they are set; `has_decision_maker` is
-- derived when the opportunity is read, from the current links of those people
-- (contacts_organization_person_key serves each probe), so ending a link or changing its roles
-- shows at once. An array rather than a table: the list is short, read whole with the
-- opportunity, and replaced whole by a PATCH.
ALTER TABLE opportunities ADD COLUMN contact_ids uuid[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(contact_ids) <= 50);

-- The person spoken to at the organization: a current or past contact of the interaction's
-- customer, checked by the service. The index serves the foreign key.
ALTER TABLE interactions ADD COLUMN contact_id uuid REFERENCES customers (id);
CREATE INDEX interactions_contact_idx ON interactions (contact_id);
