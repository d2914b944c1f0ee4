-- Removes what an earlier run of the survey stage left: the bench surveys (named 'Bench: …'),
-- their responses (with the attribute answers taken from them) and roll-up. When no other
-- survey exists, the survey tables are simply emptied (customer_satisfaction is rebuilt from
-- the remaining responses afterwards).
SELECT NOT EXISTS (SELECT FROM surveys WHERE name NOT LIKE 'Bench: %') AS only_bench \gset
\if :only_bench
TRUNCATE survey_stats, survey_stats_months, survey_stats_deltas, customer_attribute_answers,
    survey_responses, customer_satisfaction, surveys;
\else
DELETE FROM survey_stats WHERE survey_id IN (SELECT id FROM surveys WHERE name LIKE 'Bench: %');
DELETE FROM survey_stats_months WHERE survey_id IN (SELECT id FROM surveys WHERE name LIKE 'Bench: %');
DELETE FROM survey_stats_deltas WHERE survey_id IN (SELECT id FROM surveys WHERE name LIKE 'Bench: %');
DELETE FROM customer_attribute_answers WHERE response_id IN (
    SELECT r.id FROM survey_responses r JOIN surveys s ON s.id = r.survey_id
    WHERE s.name LIKE 'Bench: %');
DELETE FROM survey_responses WHERE survey_id IN (SELECT id FROM surveys WHERE name LIKE 'Bench: %');
DELETE FROM surveys WHERE name LIKE 'Bench: %' AND revises IS NOT NULL;
DELETE FROM surveys WHERE name LIKE 'Bench: %';
\endif
