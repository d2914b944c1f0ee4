ALTER TABLE imports DROP COLUMN errors_total;
ALTER TABLE import_errors
    DROP CONSTRAINT import_errors_row_fkey,
    ADD COLUMN raw text NOT NULL DEFAULT '';
UPDATE import_errors e SET raw = r.raw
FROM import_error_rows r
WHERE r.import_id = e.import_id AND r.line = e.line;
ALTER TABLE import_errors ALTER COLUMN raw DROP DEFAULT;
DROP TABLE import_error_rows;
