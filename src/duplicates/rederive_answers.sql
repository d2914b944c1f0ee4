-- The survivor's ($1) latest answer per attribute question, now that it holds the merged
-- customers' ($2) responses: theirs where newer or where it had none.
INSERT INTO customer_attribute_answers
    (customer_id, question_key, response_id, submitted_at, expectation, performance)
SELECT DISTINCT ON (question_key)
       $1, question_key, response_id, submitted_at, expectation, performance
FROM customer_attribute_answers
WHERE customer_id = ANY ($2)
ORDER BY question_key, submitted_at DESC, response_id DESC
ON CONFLICT (customer_id, question_key) DO UPDATE
SET response_id = EXCLUDED.response_id, submitted_at = EXCLUDED.submitted_at,
    expectation = EXCLUDED.expectation, performance = EXCLUDED.performance
WHERE customer_attribute_answers.submitted_at < EXCLUDED.submitted_at
