-- customer_satisfaction rebuilt from every survey response: each customer's latest NPS and
-- latest CSAT, each by the time answered (src/surveys/store.rs `remember_scores`, applied to
-- all responses at once; customers who gave neither get no row).
SET work_mem = '256MB';
TRUNCATE customer_satisfaction;
INSERT INTO customer_satisfaction (customer_id, nps, nps_at, csat, csat_at)
SELECT customer_id,
       (array_agg(nps ORDER BY submitted_at DESC, created_at DESC) FILTER (WHERE nps IS NOT NULL))[1],
       max(submitted_at) FILTER (WHERE nps IS NOT NULL),
       (array_agg(csat ORDER BY submitted_at DESC, created_at DESC) FILTER (WHERE csat IS NOT NULL))[1],
       max(submitted_at) FILTER (WHERE csat IS NOT NULL)
FROM survey_responses
GROUP BY customer_id
HAVING count(nps) + count(csat) > 0;
