DROP INDEX opportunities_stalled_idx;
ALTER TABLE opportunities DROP COLUMN last_progress_at, DROP COLUMN last_advance_at;
DROP TABLE opportunity_advances;
