-- An answer to an expectation_performance question was counted in the survey roll-up as one
-- row per (P, E) pair: a group's rows grew with the square of the scale (49 cells for a
-- 1-7 scale), and results by segment read them all. Every figure of the results needs only
-- P's counts, E's counts and the verdicts (P > E, P = E, P < E), so an answer now adds three
-- rows, each counted apart (src/surveys/rules.rs `attribute_rows`):
--   - the answer with its P: score P, expectation NULL, choice NULL;
--   - its E alone (not another answer): score NULL, expectation E, choice NULL;
--   - its verdict by name: choice 'satisfied', 'acceptable' or 'dissatisfied' (such a question
--     has no choices).
-- The pairs counted so far are split the same way, and the monthly roll-up is made again from
-- the daily one. The results still read pairs as before (a server not yet upgraded may write
-- some).
WITH pairs AS (
    DELETE FROM survey_stats
    WHERE score IS NOT NULL AND expectation IS NOT NULL
    RETURNING *
)
INSERT INTO survey_stats AS s
    (survey_id, dimension, day, segment, question_key, score, expectation, choice, n)
SELECT p.survey_id, p.dimension, p.day, p.segment, p.question_key, x.score, x.expectation,
       x.choice, sum(p.n)
FROM pairs p
CROSS JOIN LATERAL (VALUES
    (p.score, NULL::smallint, NULL::text),
    (NULL, p.expectation, NULL),
    (NULL, NULL, CASE WHEN p.score > p.expectation THEN 'satisfied'
                      WHEN p.score = p.expectation THEN 'acceptable'
                      ELSE 'dissatisfied' END)) AS x(score, expectation, choice)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
ON CONFLICT (survey_id, dimension, day, segment, question_key, score, expectation, choice)
DO UPDATE SET n = s.n + excluded.n;

-- The monthly roll-up is the daily one summed by month (count() writes both): made again.
DELETE FROM survey_stats_months;
INSERT INTO survey_stats_months
    (survey_id, dimension, month, segment, question_key, score, expectation, choice, n)
SELECT survey_id, dimension, date_trunc('month', day)::date, segment, question_key, score,
       expectation, choice, sum(n)
FROM survey_stats
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

ANALYZE survey_stats;
ANALYZE survey_stats_months;
