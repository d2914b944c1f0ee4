-- The counts not folded yet go to the roll-up, as the service would have added them.
WITH taken AS (
    DELETE FROM survey_stats_deltas RETURNING *
), counted AS (
    SELECT survey_id, dimension, day, segment, question_key, score, expectation, choice,
           sum(n) AS n
    FROM taken
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), by_day AS (
    INSERT INTO survey_stats AS s
        (survey_id, dimension, day, segment, question_key, score, expectation, choice, n)
    SELECT * FROM counted
    ON CONFLICT (survey_id, dimension, day, segment, question_key, score, expectation, choice)
    DO UPDATE SET n = s.n + excluded.n
)
INSERT INTO survey_stats_months AS m
    (survey_id, dimension, month, segment, question_key, score, expectation, choice, n)
SELECT survey_id, dimension, date_trunc('month', day)::date, segment, question_key, score,
       expectation, choice, sum(n)
FROM counted
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
ON CONFLICT (survey_id, dimension, month, segment, question_key, score, expectation, choice)
DO UPDATE SET n = m.n + excluded.n;

DROP TABLE survey_stats_deltas;
