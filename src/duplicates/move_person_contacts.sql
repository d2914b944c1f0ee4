-- Moves the merged people's ($3) links to organizations to the survivor ($2), recording
-- each under merge $1: one link per organization, none the survivor has already.
WITH o AS (
    SELECT DISTINCT ON (c.organization_id) c.id, c.person_id AS from_id
    FROM contacts c
    WHERE c.person_id = ANY ($3)
      AND NOT EXISTS (SELECT 1 FROM contacts s
                      WHERE s.person_id = $2 AND s.organization_id = c.organization_id)
    ORDER BY c.organization_id, c.id
),
moved AS (
    UPDATE contacts t SET person_id = $2 FROM o WHERE t.id = o.id
    RETURNING t.id, o.from_id
)
INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id)
SELECT $1, 'contact_person', id, from_id FROM moved
