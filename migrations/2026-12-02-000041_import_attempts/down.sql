ALTER TABLE imports DROP COLUMN last_error, DROP COLUMN attempts;
