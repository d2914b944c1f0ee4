ALTER TABLE import_matches DROP COLUMN matched_line;
