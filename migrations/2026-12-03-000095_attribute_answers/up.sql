-- Each customer's latest answer (by time answered, then response id) to each
-- expectation_performance question key, across surveys: the customer list's
-- `dissatisfied_with=<key>` keeps the customers whose latest answer had P < E.
CREATE TABLE customer_attribute_answers (
    customer_id  uuid NOT NULL REFERENCES customers (id),
    question_key text NOT NULL,
    response_id  uuid NOT NULL REFERENCES survey_responses (id),
    submitted_at timestamptz NOT NULL,
    expectation  smallint NOT NULL CHECK (expectation BETWEEN 1 AND 10),
    performance  smallint NOT NULL CHECK (performance BETWEEN 1 AND 10),
    PRIMARY KEY (customer_id, question_key)
);
-- The filter reads the dissatisfied customers of one key.
CREATE INDEX customer_attribute_answers_dissatisfied_idx
    ON customer_attribute_answers (question_key, customer_id) WHERE performance < expectation;
CREATE INDEX customer_attribute_answers_response_idx ON customer_attribute_answers (response_id);

-- The responses recorded so far.
INSERT INTO customer_attribute_answers
    (customer_id, question_key, response_id, submitted_at, expectation, performance)
SELECT DISTINCT ON (r.customer_id, a.key)
       r.customer_id, a.key, r.id, r.submitted_at,
       (a.value ->> 'expectation')::smallint, (a.value ->> 'performance')::smallint
FROM survey_responses r, jsonb_each(r.answers) a
WHERE jsonb_typeof(a.value) = 'object'
  AND jsonb_typeof(a.value -> 'expectation') = 'number'
  AND jsonb_typeof(a.value -> 'performance') = 'number'
ORDER BY r.customer_id, a.key, r.submitted_at DESC, r.id DESC;
