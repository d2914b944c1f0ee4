-- Moves the people linked to the merged organizations ($3) to the survivor ($2), recording
-- each under merge $1: one link per person, none the survivor has already. A current primary
-- link stays primary only when the survivor has no current primary contact (the first such
-- link by id); one that loses the flag is recorded with `points` 1 so an unmerge restores it.
WITH o AS (
    SELECT DISTINCT ON (c.person_id) c.id, c.organization_id AS from_id, c.is_primary AS was_primary
    FROM contacts c
    WHERE c.organization_id = ANY ($3)
      AND NOT EXISTS (SELECT 1 FROM contacts s
                      WHERE s.organization_id = $2 AND s.person_id = c.person_id)
    ORDER BY c.person_id, c.id
),
keeps AS (
    SELECT c.id FROM contacts c JOIN o ON o.id = c.id
    WHERE c.is_primary AND c.ended_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM contacts s
                      WHERE s.organization_id = $2 AND s.is_primary AND s.ended_at IS NULL)
    ORDER BY c.id LIMIT 1
),
moved AS (
    UPDATE contacts t
    SET organization_id = $2,
        is_primary = t.is_primary AND (t.ended_at IS NOT NULL OR t.id IN (SELECT id FROM keeps))
    FROM o WHERE t.id = o.id
    RETURNING t.id, o.from_id,
        (o.was_primary AND NOT t.is_primary) AS unflagged
)
INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id, points)
SELECT $1, 'contact_organization', id, from_id, CASE WHEN unflagged THEN 1 END FROM moved
