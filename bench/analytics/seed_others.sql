-- The analytics data set, step 4: satisfaction, loyalty and the sales pipeline.

-- 30 % of customers have a latest NPS (85 % of them: 0–10, ⌊11 × U^0.4⌋, about 39 %
-- promoters and 32 % detractors) and/or CSAT (70 %, or whenever there is no NPS:
-- 1 + ⌊5 × U^0.5⌋, 64 % satisfied), answered in the last year.
INSERT INTO customer_satisfaction (customer_id, nps, nps_at, csat, csat_at)
SELECT id,
       CASE WHEN r_nps < 0.85 THEN least(10, floor(11 * random() ^ 0.4))::smallint END,
       CASE WHEN r_nps < 0.85 THEN :'t0'::timestamptz - random() * interval '365 days' END,
       CASE WHEN r_nps >= 0.85 OR r_csat < 0.7 THEN (1 + least(4, floor(5 * random() ^ 0.5)))::smallint END,
       CASE WHEN r_nps >= 0.85 OR r_csat < 0.7 THEN :'t0'::timestamptz - random() * interval '365 days' END
FROM (SELECT id, random() AS r_nps, random() AS r_csat FROM bench_c WHERE n % 10 IN (3, 6, 9) OFFSET 0) s;

-- Three loyalty tiers, and 20 % of customers members: standard 60 %, silver 30 %, gold 10 %.
INSERT INTO loyalty_tiers (key, name, position, threshold, multiplier_percent)
VALUES ('standard', 'Standard', 0, 0, 100), ('silver', 'Silver', 1, 1000, 125),
       ('gold', 'Gold', 2, 3000, 150)
ON CONFLICT DO NOTHING;
INSERT INTO loyalty_accounts (customer_id, balance, tier_key, tier_since, created_at, updated_at)
SELECT id, floor(r * 5000)::bigint,
       CASE WHEN r < 0.6 THEN 'standard' WHEN r < 0.9 THEN 'silver' ELSE 'gold' END,
       :'t0'::timestamptz - r * interval '365 days', created_at, created_at
FROM (SELECT id, created_at, random() AS r FROM bench_c WHERE n % 5 = 2 OFFSET 0) a;

-- Opportunities, 0.2 per customer, for random customers, owned by the 300 staff users; in
-- the live stages of pipeline_stages, earlier ones more often (the stage at position
-- 1 + ⌊U^1.5 × stages⌋: with the six default stages 30, 18, 15, 13, 12 and 11 %);
-- amounts 500 EUR × U^(−1/1.8) (at most 500 000 EUR), 95 % EUR; expected close within a year
-- either side of today. Those expected in the past: won 45 %, lost 40 %, still open 15 %;
-- the others: open 85 %, won 10 %, lost 5 %. Closed ones have closed_at (around the expected
-- date, never in the future); 1 % are deleted.
CREATE TEMP SEQUENCE opportunity_seq;
INSERT INTO opportunities (id, customer_id, title, amount, currency, stage, owner_id,
                           expected_close_date, status, close_reason, closed_at, created_at,
                           updated_at, deleted_at)
SELECT ('018f0004-0000-7000-8000-' || lpad(to_hex(nextval('opportunity_seq')), 12, '0'))::uuid,
       customer_id, 'Bench deal', amount, currency, stage, owner_id, expected_close_date, status,
       CASE WHEN status = 'lost' THEN 'lost to a competitor' END,
       CASE WHEN status <> 'open' THEN greatest(created_at, closed_guess) END,
       created_at, coalesce(CASE WHEN status <> 'open' THEN greatest(created_at, closed_guess) END, created_at),
       CASE WHEN r_del < 0.01 THEN :'t0'::timestamptz END
FROM (
    SELECT *,
           CASE WHEN expected_close_date < :'t0'::date
                THEN CASE WHEN r_status < 0.45 THEN 'won' WHEN r_status < 0.85 THEN 'lost' ELSE 'open' END
                ELSE CASE WHEN r_status < 0.85 THEN 'open' WHEN r_status < 0.95 THEN 'won' ELSE 'lost' END
           END AS status,
           least(:'t0'::timestamptz - interval '1 minute',
                 expected_close_date + (r_close * 30 - 15) * interval '1 day') AS closed_guess,
           least(:'t0'::timestamptz - interval '1 day',
                 expected_close_date - (30 + r_close * 180) * interval '1 day') AS created_at
    FROM (
        SELECT ('018f0001-0000-7000-8000-' || lpad(to_hex(1 + floor(random() * :customers)::int), 12, '0'))::uuid AS customer_id,
               least(50000000, round(50000 * (1 - random()) ^ (-1 / 1.8)))::bigint AS amount,
               CASE WHEN random() < 0.05 THEN 'USD' ELSE 'EUR' END AS currency,
               st.keys[1 + floor(r_stage ^ 1.5 * cardinality(st.keys))::int] AS stage,
               ('018f0000-0000-7000-8000-' || lpad(to_hex(1 + floor(random() * 300)::int), 12, '0'))::uuid AS owner_id,
               :'t0'::date + (floor(random() * 731) - 365)::int AS expected_close_date,
               random() AS r_status, random() AS r_close, random() AS r_del
        FROM (SELECT random() AS r_stage FROM generate_series(1, :customers / 5) OFFSET 0) g,
             (SELECT array_agg(key ORDER BY position) AS keys FROM pipeline_stages
              WHERE deleted_at IS NULL) st
        OFFSET 0) o
    OFFSET 0) p;
