DROP INDEX interactions_complaint_cause_idx;
ALTER TABLE interactions
    DROP CONSTRAINT interactions_cause_complaint_check,
    DROP COLUMN cause;
