-- Satisfaction surveys (DOMAIN.md section 4): definitions, responses, a daily roll-up that
-- the results are computed from, and each customer's latest scores for list filters.

CREATE TABLE surveys (
    id                       uuid PRIMARY KEY,
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description              text CHECK (length(description) <= 2000),
    status                   text NOT NULL DEFAULT 'draft'
                                 CHECK (status IN ('draft', 'active', 'closed')),
    -- [{key, text, type, required, ...}], as the API shows them; frozen once answered.
    questions                jsonb NOT NULL CHECK (jsonb_typeof(questions) = 'array'),
    allow_multiple_responses boolean NOT NULL DEFAULT false,
    -- {detractors, csat_at_most, due_in_hours} or null: when a response opens a follow-up.
    follow_up                jsonb,
    -- Revisions of one survey: 1 for the first, and the survey this one revises.
    revision                 integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    revises                  uuid REFERENCES surveys (id),
    activated_at             timestamptz,
    closed_at                timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    version                  bigint NOT NULL DEFAULT 1
);
CREATE INDEX surveys_created_idx ON surveys (created_at, id);
CREATE INDEX surveys_revises_idx ON surveys (revises);

CREATE TABLE survey_responses (
    id              uuid PRIMARY KEY,
    survey_id       uuid NOT NULL REFERENCES surveys (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    -- What the response follows, when it follows something.
    interaction_id  uuid REFERENCES interactions (id),
    purchase_id     uuid REFERENCES purchases (id),
    submitted_at    timestamptz NOT NULL,
    -- {question key: answer}, validated against the survey's questions.
    answers         jsonb NOT NULL CHECK (jsonb_typeof(answers) = 'object'),
    -- The answers to the survey's first NPS, CSAT and CES questions: filters and follow-ups.
    nps             smallint CHECK (nps BETWEEN 0 AND 10),
    csat            smallint CHECK (csat BETWEEN 1 AND 5),
    ces             smallint CHECK (ces BETWEEN 1 AND 7),
    -- The customer's segments when they answered, which the results group by.
    loyalty_tier    text,
    lifecycle_stage text NOT NULL,
    region_type     text,
    -- Copied from the survey (frozen once answered): one response per customer or several.
    single          boolean NOT NULL,
    -- The follow-up interaction this response opened.
    follow_up_id    uuid REFERENCES interactions (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX survey_responses_single_key ON survey_responses (survey_id, customer_id) WHERE single;
CREATE INDEX survey_responses_survey_idx ON survey_responses (survey_id, submitted_at, id);
CREATE INDEX survey_responses_customer_idx ON survey_responses (customer_id, submitted_at, id);
CREATE INDEX survey_responses_all_idx ON survey_responses (submitted_at, id);
CREATE INDEX survey_responses_interaction_idx ON survey_responses (interaction_id);
CREATE INDEX survey_responses_purchase_idx ON survey_responses (purchase_id);
CREATE INDEX survey_responses_follow_up_idx ON survey_responses (follow_up_id);

-- How many answers had each value, per survey, UTC day and question, overall
-- (dimension '') and per segment of each dimension: the results read these few rows
-- instead of every response. `question_key` '' counts responses. For an
-- expectation_performance answer `score` is P and `expectation` E; a choice answer counts
-- each chosen `choice`; a text answer counts with all three null.
CREATE TABLE survey_stats (
    survey_id    uuid NOT NULL REFERENCES surveys (id),
    dimension    text NOT NULL
                     CHECK (dimension IN ('', 'tier', 'lifecycle_stage', 'region_type')),
    day          date NOT NULL,
    segment      text NOT NULL,
    question_key text NOT NULL,
    score        smallint,
    expectation  smallint,
    choice       text,
    n            bigint NOT NULL CHECK (n >= 0)
);
CREATE UNIQUE INDEX survey_stats_key ON survey_stats
    (survey_id, dimension, day, segment, question_key, score, expectation, choice) NULLS NOT DISTINCT;

-- Each customer's latest NPS and CSAT answers (by time answered), for the customer list.
CREATE TABLE customer_satisfaction (
    customer_id uuid PRIMARY KEY REFERENCES customers (id),
    nps         smallint CHECK (nps BETWEEN 0 AND 10),
    nps_at      timestamptz,
    csat        smallint CHECK (csat BETWEEN 1 AND 5),
    csat_at     timestamptz
);
CREATE INDEX customer_satisfaction_nps_idx ON customer_satisfaction (nps) WHERE nps IS NOT NULL;
CREATE INDEX customer_satisfaction_csat_idx ON customer_satisfaction (csat) WHERE csat IS NOT NULL;
