-- The survivor's ($1) latest NPS and CSAT answers, from the responses it holds now.
INSERT INTO customer_satisfaction (customer_id, nps, nps_at, csat, csat_at)
SELECT $1, n.nps, n.submitted_at, c.csat, c.submitted_at
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT nps, submitted_at FROM survey_responses
                   WHERE customer_id = $1 AND nps IS NOT NULL
                   ORDER BY submitted_at DESC, id DESC LIMIT 1) n ON true
LEFT JOIN LATERAL (SELECT csat, submitted_at FROM survey_responses
                   WHERE customer_id = $1 AND csat IS NOT NULL
                   ORDER BY submitted_at DESC, id DESC LIMIT 1) c ON true
WHERE n.nps IS NOT NULL OR c.csat IS NOT NULL
ON CONFLICT (customer_id) DO UPDATE
SET nps = EXCLUDED.nps, nps_at = EXCLUDED.nps_at, csat = EXCLUDED.csat, csat_at = EXCLUDED.csat_at
