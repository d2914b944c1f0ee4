-- Back to one row per (P, E) pair. The split counts cannot be paired again, so the pairs are
-- recounted from the stored responses, as the service counted them (the UTC day answered,
-- the segments the response keeps). Responses deleted since they were counted are no longer
-- in these rows, unlike in the other questions' rows.
DELETE FROM survey_stats s
USING surveys v, jsonb_to_recordset(v.questions) AS q(key text, type text)
WHERE v.id = s.survey_id AND q.key = s.question_key AND q.type = 'expectation_performance';

INSERT INTO survey_stats
    (survey_id, dimension, day, segment, question_key, score, expectation, choice, n)
SELECT r.survey_id, d.dimension, (r.submitted_at AT TIME ZONE 'UTC')::date, d.segment, q.key,
       (r.answers -> q.key ->> 'performance')::smallint,
       (r.answers -> q.key ->> 'expectation')::smallint, NULL, count(*)
FROM survey_responses r
JOIN surveys v ON v.id = r.survey_id
CROSS JOIN LATERAL jsonb_to_recordset(v.questions) AS q(key text, type text)
CROSS JOIN LATERAL (VALUES ('', ''),
                           ('tier', coalesce(r.loyalty_tier, 'none')),
                           ('lifecycle_stage', r.lifecycle_stage),
                           ('region_type', coalesce(r.region_type, 'none')))
    AS d(dimension, segment)
WHERE q.type = 'expectation_performance' AND r.answers ? q.key
GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- The monthly roll-up is the daily one summed by month: made again.
DELETE FROM survey_stats_months;
INSERT INTO survey_stats_months
    (survey_id, dimension, month, segment, question_key, score, expectation, choice, n)
SELECT survey_id, dimension, date_trunc('month', day)::date, segment, question_key, score,
       expectation, choice, sum(n)
FROM survey_stats
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
