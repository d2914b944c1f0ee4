-- The groups of organizations as a batch of imported customers would leave them: for each
-- batch row, the chain of parents above it (the batch's own parents replacing the stored ones
-- of the customers it changes), whether that chain comes back to the row (a cycle, its ids
-- in order), how many levels the group would have through the row, whether its parent is a
-- live organization the sender can see, and whether a row that is no organization would keep
-- subsidiaries.
--
-- $1 ids, $2 parents (NULL: none), $3 kinds, $4 whether the row changes its parent: the
-- batch rows that change a parent or a kind (a new customer has an id of its own here, that
-- nothing can name yet). $5 the owned-only sender, or NULL.
WITH RECURSIVE batch AS (
    SELECT b.id, b.parent_id, b.kind, b.parent_changed
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bool[])
        AS b (id, parent_id, kind, parent_changed)
),
-- Upwards from each row whose parent changes: path = the row, its parent, theirs, …; a walk
-- stops at the top, on coming back to the row (a cycle), or at a repeat above it.
up (start, id, path, cycle) AS (
    SELECT b.id, b.parent_id, ARRAY[b.id, b.parent_id], b.parent_id = b.id
    FROM batch b
    WHERE b.parent_changed AND b.parent_id IS NOT NULL
  UNION ALL
    SELECT up.start, next.parent_id, up.path || next.parent_id, next.parent_id = up.start
    FROM up
    CROSS JOIN LATERAL (
        SELECT CASE WHEN EXISTS (SELECT 1 FROM batch b WHERE b.id = up.id)
                    THEN (SELECT b.parent_id FROM batch b WHERE b.id = up.id)
                    ELSE (SELECT c.parent_id FROM customers c WHERE c.id = up.id) END
            AS parent_id
    ) AS next
    WHERE NOT up.cycle AND next.parent_id IS NOT NULL AND cardinality(up.path) < 64
      AND (next.parent_id = up.start OR NOT next.parent_id = ANY (up.path))
),
walks AS (
    SELECT DISTINCT ON (start) start, path, cycle
    FROM up
    ORDER BY start, cycle DESC, cardinality(path) DESC
),
-- Downwards from each of those rows (not on a cycle), at most 11 levels: its subsidiaries as
-- the batch leaves them.
down (start, id, depth, path) AS (
    SELECT w.start, w.start, 1, ARRAY[w.start]
    FROM walks w
    WHERE NOT w.cycle
  UNION ALL
    SELECT down.start, child.id, down.depth + 1, down.path || child.id
    FROM down
    CROSS JOIN LATERAL (
        SELECT c.id FROM customers c
        WHERE c.parent_id = down.id AND NOT EXISTS (SELECT 1 FROM batch b WHERE b.id = c.id)
        UNION ALL
        SELECT b.id FROM batch b WHERE b.parent_id = down.id
    ) AS child
    WHERE down.depth <= 10 AND NOT child.id = ANY (down.path)
),
heights AS (
    SELECT start, max(depth) AS below FROM down GROUP BY start
)
SELECT b.id,
       CASE WHEN w.cycle THEN w.path ELSE '{}'::uuid[] END AS cycle,
       CASE WHEN w.cycle IS NOT TRUE AND w.start IS NOT NULL
            THEN (cardinality(w.path) - 1 + coalesce(h.below, 1))::int4 ELSE 0 END AS levels,
       CASE WHEN NOT b.parent_changed OR b.parent_id IS NULL THEN 'ok'
            WHEN p.id IS NULL OR p.deleted_at IS NOT NULL
                 OR ($5::uuid IS NOT NULL AND p.account_manager_id IS DISTINCT FROM $5::uuid)
                THEN 'missing'
            WHEN coalesce(pb.kind, p.kind) <> 'organization' THEN 'individual'
            ELSE 'ok' END AS parent,
       b.kind <> 'organization' AND (
           EXISTS (SELECT 1 FROM customers c
                   WHERE c.parent_id = b.id
                     AND NOT EXISTS (SELECT 1 FROM batch o WHERE o.id = c.id))
           OR EXISTS (SELECT 1 FROM batch o WHERE o.parent_id = b.id)
       ) AS stranded
FROM batch b
LEFT JOIN walks w ON w.start = b.id
LEFT JOIN heights h ON h.start = b.id
LEFT JOIN customers p ON p.id = b.parent_id
LEFT JOIN batch pb ON pb.id = b.parent_id
