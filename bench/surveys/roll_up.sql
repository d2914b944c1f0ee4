-- pg_temp.survey_roll_up(survey): the rows of survey_stats that the service's responses to
-- `survey` add up to, computed set-wise from the stored responses and the survey's questions
-- with the rules of src/surveys/rules.rs `answers()` and store.rs `count()`:
--
-- per response, under each of the four dimensions ('' with segment '', then 'tier',
-- 'lifecycle_stage' and 'region_type' with the customer's segment when they answered, 'none'
-- without one), on the UTC day answered:
--   - one row with question_key '' (all nulls): the response;
--   - per answered nps, csat, ces or rating question: one row with its score;
--   - per answered expectation_performance question: three rows, each counted apart: score
--     P (the answer), expectation E alone, and the verdict's name as `choice` ('satisfied'
--     P > E, 'acceptable' P = E, 'dissatisfied' P < E);
--   - per answered single_choice or multi_choice question: one row with all nulls (the
--     answer), and one row per choice it names (`choice`);
--   - per answered text question: one row with all nulls.
-- Exact as long as no text answer was erased (erasure removes it from `answers`, not from
-- the counts). Used to seed the roll-up and to check what the service wrote.
CREATE FUNCTION pg_temp.survey_roll_up(survey uuid)
RETURNS TABLE (survey_id uuid, dimension text, day date, segment text, question_key text,
               score smallint, expectation smallint, choice text, n bigint)
LANGUAGE sql STABLE AS $$
    WITH q AS MATERIALIZED (
        SELECT x.key, x.type
        FROM surveys s, jsonb_to_recordset(s.questions) AS x(key text, type text)
        WHERE s.id = survey
    )
    SELECT r.survey_id, d.dimension, (r.submitted_at AT TIME ZONE 'UTC')::date, d.segment,
           c.question_key, c.score, c.expectation, c.choice, count(*)
    FROM survey_responses r
    CROSS JOIN LATERAL (
        SELECT '' AS question_key, NULL::smallint AS score, NULL::smallint AS expectation,
               NULL::text AS choice
        UNION ALL
        SELECT q.key,
               CASE WHEN q.type = 'expectation_performance'
                        THEN (r.answers -> q.key ->> 'performance')::smallint
                    WHEN q.type IN ('nps', 'csat', 'ces', 'rating')
                        THEN (r.answers ->> q.key)::smallint END,
               NULL, NULL
        FROM q
        WHERE r.answers ? q.key
        UNION ALL
        SELECT q.key, NULL, x.expectation, x.choice
        FROM q
        CROSS JOIN LATERAL (SELECT (r.answers -> q.key ->> 'expectation')::smallint,
                                   (r.answers -> q.key ->> 'performance')::smallint) AS a(e, p)
        CROSS JOIN LATERAL (VALUES (a.e, NULL::text),
                                   (NULL, CASE WHEN a.p > a.e THEN 'satisfied'
                                               WHEN a.p = a.e THEN 'acceptable'
                                               ELSE 'dissatisfied' END)) AS x(expectation, choice)
        WHERE q.type = 'expectation_performance' AND r.answers ? q.key
        UNION ALL
        SELECT q.key, NULL, NULL, named.choice
        FROM q
        CROSS JOIN LATERAL jsonb_array_elements_text(
            CASE WHEN q.type = 'single_choice' THEN jsonb_build_array(r.answers -> q.key)
                 ELSE r.answers -> q.key END) AS named(choice)
        WHERE q.type IN ('single_choice', 'multi_choice') AND r.answers ? q.key
    ) c
    CROSS JOIN LATERAL (VALUES ('', ''),
                               ('tier', coalesce(r.loyalty_tier, 'none')),
                               ('lifecycle_stage', r.lifecycle_stage),
                               ('region_type', coalesce(r.region_type, 'none')))
        AS d(dimension, segment)
    WHERE r.survey_id = survey
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
$$;

-- pg_temp.survey_months(survey): the rows of survey_stats_months for a survey, as the
-- service's count() writes them beside the days: survey_stats summed by calendar month.
CREATE FUNCTION pg_temp.survey_months(survey uuid) RETURNS SETOF survey_stats_months
LANGUAGE sql STABLE AS $$
    SELECT survey_id, dimension, day - (extract(day FROM day)::int - 1), segment,
           question_key, score, expectation, choice, sum(n)::bigint
    FROM survey_stats
    WHERE survey_id = survey
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
$$;
