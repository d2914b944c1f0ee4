-- A row of an import that matched an earlier new row of the same batch by the duplicate rules
-- (rather than a stored customer) names that row's line (issue 23).
ALTER TABLE import_matches ADD COLUMN matched_line bigint;
