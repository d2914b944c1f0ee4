-- The audit rows and the events of some changes, in one statement. A data-modifying WITH
-- runs exactly once whether or not it is read; each set is inserted in its given order.
WITH audit AS (
    INSERT INTO audit_events
        (id, actor_type, actor_id, action, entity_type, entity_id, changes, request_id)
    SELECT a.id, $1, $2, a.action, a.entity_type, a.entity_id, a.changes, $3
    FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::jsonb[]) WITH ORDINALITY
         AS a (id, action, entity_type, entity_id, changes, n)
    ORDER BY a.n
)
INSERT INTO events (id, type, object_type, object_id, data, previous, request_id)
SELECT e.id, e.type, e.object_type, e.object_id, e.data, e.previous, $3
FROM unnest($9::uuid[], $10::text[], $11::text[], $12::text[], $13::jsonb[], $14::jsonb[])
     WITH ORDINALITY AS e (id, type, object_type, object_id, data, previous, n)
ORDER BY e.n
