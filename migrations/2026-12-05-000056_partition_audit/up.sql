-- Partitioned history, `audit_events` step 3: the swap, catalog-only. The old table becomes
-- the partition `audit_events_before`, attached without a scan, its indexes adopted.
ALTER TABLE audit_events RENAME TO audit_events_before;
ALTER INDEX audit_events_pkey RENAME TO audit_events_before_pkey;
ALTER INDEX audit_events_entity_idx RENAME TO audit_events_before_entity_idx;
ALTER INDEX audit_events_actor_idx RENAME TO audit_events_before_actor_idx;
ALTER INDEX audit_events_action_idx RENAME TO audit_events_before_action_idx;
ALTER INDEX audit_events_request_idx RENAME TO audit_events_before_request_idx;

CREATE TABLE audit_events (
    id          uuid NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_type  text NOT NULL
                CONSTRAINT audit_events_actor_type_check
                CHECK (actor_type IN ('user', 'api_client', 'service', 'system')),
    actor_id    text NOT NULL,
    action      text NOT NULL,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    changes     jsonb NOT NULL DEFAULT '{}',
    request_id  text,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, id DESC);
CREATE INDEX audit_events_request_idx ON audit_events (request_id) WHERE request_id IS NOT NULL;

DO $$
DECLARE
    bound text := substring(
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conname = 'audit_events_before_bound' AND conrelid = 'audit_events_before'::regclass)
        FROM '''([0-9a-f-]+)''');
BEGIN
    EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION audit_events_before FOR VALUES FROM (MINVALUE) TO (%L)',
                   bound);
END
$$;

SELECT rapport_make_partitions('audit_events', 3);
