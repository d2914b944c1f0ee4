-- A response added its counts to the day's roll-up rows in place, so every response of a day
-- updated the same rows and concurrent postings queued on their locks to the commit (10 of
-- 15 sessions waiting in the bench). A response now appends its counts here, locking no row
-- another response needs; the results read these rows beside the roll-up's, and the service
-- folds them into survey_stats and survey_stats_months every second, one instance at a time
-- (src/surveys/store.rs `fold`). A folded row is deleted in the statement that adds it to
-- the roll-up, so a reader's snapshot counts it once, here or there.
CREATE TABLE survey_stats_deltas (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    survey_id    uuid NOT NULL REFERENCES surveys (id),
    dimension    text NOT NULL
                     CHECK (dimension IN ('', 'tier', 'lifecycle_stage', 'region_type')),
    day          date NOT NULL,
    segment      text NOT NULL,
    question_key text NOT NULL,
    score        smallint,
    expectation  smallint,
    choice       text,
    n            bigint NOT NULL CHECK (n > 0)
);
CREATE INDEX survey_stats_deltas_day ON survey_stats_deltas (survey_id, dimension, day);
