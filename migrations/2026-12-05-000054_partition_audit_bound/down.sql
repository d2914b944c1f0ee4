ALTER TABLE audit_events DROP CONSTRAINT audit_events_before_bound;
