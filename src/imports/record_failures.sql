-- Failed rows of an import: $1 the import; $2, $3 each failed row's line and raw text, once;
-- $4, $5, $6 each problem's line, field and message. A row stored already (a job resumed
-- after storing it) keeps its first text. The import's count of problems grows with them.
WITH new_rows AS (
    INSERT INTO import_error_rows (import_id, line, raw)
    SELECT $1, line, raw FROM unnest($2::bigint[], $3::text[]) AS r(line, raw)
    ON CONFLICT (import_id, line) DO NOTHING
), problems AS (
    INSERT INTO import_errors (import_id, line, field, message)
    SELECT $1, line, field, message
    FROM unnest($4::bigint[], $5::text[], $6::text[]) AS p(line, field, message)
    RETURNING 1
)
UPDATE imports SET errors_total = errors_total + (SELECT count(*) FROM problems)
WHERE id = $1
