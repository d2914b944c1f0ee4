-- A failed row is kept once, with its raw text, and each of its problems refers to it: a row
-- failing on several fields no longer stores its text once per field. The rows are what the
-- error file pages through (by line, its problems aggregated), never split across pages.
CREATE TABLE import_error_rows (
    import_id uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line      bigint NOT NULL,
    -- The row as it was sent (a CSV record or an NDJSON line), to fix and re-send.
    raw       text NOT NULL,
    PRIMARY KEY (import_id, line)
);
INSERT INTO import_error_rows (import_id, line, raw)
SELECT DISTINCT ON (import_id, line) import_id, line, raw
FROM import_errors
ORDER BY import_id, line;

ALTER TABLE import_errors
    DROP COLUMN raw,
    ADD CONSTRAINT import_errors_row_fkey FOREIGN KEY (import_id, line)
        REFERENCES import_error_rows (import_id, line) ON DELETE CASCADE;

-- How many problems an import's failed rows have in all (`failed` counts rows), kept with
-- them so that an import's answer says so without counting millions of rows.
ALTER TABLE imports ADD COLUMN errors_total bigint NOT NULL DEFAULT 0;
UPDATE imports i SET errors_total = e.n
FROM (SELECT import_id, count(*) AS n FROM import_errors GROUP BY import_id) e
WHERE e.import_id = i.id;
