-- Moves the merged customers' survey responses to the survivor ($2), recording each under
-- merge $1, except where one survey allows one response per customer (`single`) and the
-- survivor has answered it, or a later response of another merged customer ($3) moves.
WITH o AS (
    SELECT x.id, x.customer_id AS from_id
    FROM survey_responses x
    WHERE x.customer_id = ANY ($3)
      AND NOT (x.single AND (
          EXISTS (SELECT 1 FROM survey_responses y
                  WHERE y.survey_id = x.survey_id AND y.customer_id = $2 AND y.single)
          OR EXISTS (SELECT 1 FROM survey_responses z
                     WHERE z.survey_id = x.survey_id AND z.single
                       AND z.customer_id = ANY ($3) AND z.customer_id <> x.customer_id
                       AND (z.submitted_at, z.id) > (x.submitted_at, x.id))))
    FOR UPDATE
),
moved AS (
    UPDATE survey_responses t SET customer_id = $2 FROM o WHERE t.id = o.id
    RETURNING t.id, o.from_id
)
INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id)
SELECT $1, 'survey_response', id, from_id FROM moved
