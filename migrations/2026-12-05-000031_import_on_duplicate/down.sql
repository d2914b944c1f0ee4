DROP TABLE import_matches;
ALTER TABLE imports DROP COLUMN on_duplicate;
