-- The survey roll-up by calendar month beside the daily one: the same counts, summed per
-- month (`month` is the month's first day). Results over a range read whole months here and
-- only the days of its ragged edges from survey_stats, so a year reads about 13 months of
-- rows instead of 365 days of them. count() writes both in one statement.
CREATE TABLE survey_stats_months (
    survey_id    uuid NOT NULL REFERENCES surveys (id),
    dimension    text NOT NULL
                     CHECK (dimension IN ('', 'tier', 'lifecycle_stage', 'region_type')),
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    segment      text NOT NULL,
    question_key text NOT NULL,
    score        smallint,
    expectation  smallint,
    choice       text,
    n            bigint NOT NULL CHECK (n >= 0)
);
CREATE UNIQUE INDEX survey_stats_months_key ON survey_stats_months
    (survey_id, dimension, month, segment, question_key, score, expectation, choice) NULLS NOT DISTINCT;

INSERT INTO survey_stats_months
    (survey_id, dimension, month, segment, question_key, score, expectation, choice, n)
SELECT survey_id, dimension, date_trunc('month', day)::date, segment, question_key, score,
       expectation, choice, sum(n)
FROM survey_stats
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

ANALYZE survey_stats_months;
