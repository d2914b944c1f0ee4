-- A search with `include=organizations` reads, for each page, the current organizations of
-- the people found and the current people of those organizations: a few hundred links, each
-- fetched from the table to read `ended_at`. The current links alone, with both ends, are
-- read from these indexes without the table.
CREATE INDEX contacts_current_organization_idx ON contacts (organization_id, person_id)
    WHERE ended_at IS NULL;
CREATE INDEX contacts_current_person_idx ON contacts (person_id, organization_id)
    WHERE ended_at IS NULL;
