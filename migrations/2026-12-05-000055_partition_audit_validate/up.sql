-- Partitioned history, `audit_events` step 2: the bound proved while writes go on.
ALTER TABLE audit_events VALIDATE CONSTRAINT audit_events_before_bound;
