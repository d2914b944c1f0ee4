-- One response to the survey :'survey' (bench/surveys/survey.json) per live customer, in one
-- INSERT ... SELECT: answered at a random moment of the last 365 days, with the customer's
-- segments at that moment (loyalty tier, lifecycle stage, region type) and the answers as the
-- service stores them (unanswered questions left out; nps, csat and ces copied to their
-- columns). Reproducible: random() is seeded.
--
-- Scores are skewed as real answers are: each customer has a mood, a uniform draw raised to a
-- power k (k < 1: happier), which is lower for gold members and committed customers, higher
-- for customers in no tier and those drifting away (dissolution, churned), and which improves
-- slowly over the year; every score is drawn from its own distribution (the thresholds below)
-- at the mood, or, for a share of answers, at a fresh draw of its own.
SET work_mem = '256MB';
SELECT setseed(0.4242);

INSERT INTO survey_responses
    (id, survey_id, customer_id, submitted_at, answers, nps, csat, ces,
     loyalty_tier, lifecycle_stage, region_type, single, created_at, updated_at)
SELECT
    -- A UUIDv7 of the moment answered (the service's ids are UUIDv7 of the moment recorded).
    encode(set_byte(overlay(uuid_send(gen_random_uuid())
                            PLACING substring(int8send((extract(epoch FROM s.submitted_at) * 1000)::bigint) FROM 3)
                            FROM 1 FOR 6),
                    6, 112 + floor(s.r[40] * 16)::int), 'hex')::uuid,
    :'survey',
    s.customer_id,
    s.submitted_at,
    jsonb_strip_nulls(jsonb_build_object(
        'recommend', s.nps,
        'satisfaction', s.csat,
        'effort', s.ces,
        'delivery', s.delivery,
        'channel', s.channel,
        'reasons', to_jsonb(s.reasons),
        'comment', s.comment,
        'checkout', CASE WHEN s.checkout_p IS NOT NULL
                         THEN jsonb_build_object('expectation', s.checkout_e, 'performance', s.checkout_p) END,
        'advice', CASE WHEN s.advice_p IS NOT NULL
                       THEN jsonb_build_object('expectation', s.advice_e, 'performance', s.advice_p) END,
        'surprise', CASE WHEN s.surprise_p IS NOT NULL
                         THEN jsonb_build_object('expectation', s.surprise_e, 'performance', s.surprise_p) END)),
    s.nps, s.csat, s.ces,
    s.tier, s.stage, s.region,
    true,
    s.submitted_at, s.submitted_at
FROM (
    SELECT m.*,
        -- nps 0..10: 2 1 1 2 2 5 6 12 20 22 27 % at k = 1 (NPS +30).
        width_bucket(m.mood, ARRAY[.02, .03, .04, .06, .08, .13, .19, .31, .51, .73]::float8[]) AS nps,
        -- csat 1..5: 4 6 15 40 35 %; 70 % at the mood.
        1 + width_bucket(CASE WHEN m.r[2] < .7 THEN m.mood ELSE power(m.r[3], m.k) END,
                         ARRAY[.04, .10, .25, .65]::float8[]) AS csat,
        -- ces 1..7 (7: very easy), answered by 80 %: 3 5 8 14 25 25 20 %.
        CASE WHEN m.r[4] < .8 THEN 1 + width_bucket(
            CASE WHEN m.r[5] < .6 THEN m.mood ELSE power(m.r[6], m.k) END,
            ARRAY[.03, .08, .16, .30, .55, .80]::float8[]) END AS ces,
        -- delivery 1..5, answered by 90 %: 3 7 20 40 30 %.
        CASE WHEN m.r[7] < .9 THEN 1 + width_bucket(
            CASE WHEN m.r[8] < .5 THEN m.mood ELSE power(m.r[9], m.k) END,
            ARRAY[.03, .10, .30, .70]::float8[]) END AS delivery,
        -- channel, answered by 95 %: webshop 45, store 30, phone 10, marketplace 15 %.
        CASE WHEN m.r[10] < .95 THEN (ARRAY['webshop', 'store', 'phone', 'marketplace'])
            [1 + width_bucket(m.r[11], ARRAY[.45, .75, .85]::float8[])] END AS channel,
        -- reasons, answered by 70 %: each named independently, at least one.
        CASE WHEN m.r[12] < .7 THEN coalesce(nullif(array_remove(ARRAY[
            CASE WHEN m.r[13] < .55 THEN 'price' END,
            CASE WHEN m.r[14] < .45 THEN 'quality' END,
            CASE WHEN m.r[15] < .35 THEN 'delivery speed' END,
            CASE WHEN m.r[16] < .15 THEN 'advice' END,
            CASE WHEN m.r[17] < .20 THEN 'range' END,
            CASE WHEN m.r[18] < .10 THEN 'returns' END], NULL), '{}'), ARRAY['quality']) END AS reasons,
        -- comment, written by 12 %.
        CASE WHEN m.r[19] < .12 THEN (ARRAY[
            'Quick delivery, friendly staff.',
            'The parcel arrived damaged, but the replacement came within two days.',
            'Far too long on hold when I called about my order.',
            'Great advice in the store, I will be back.',
            'Prices went up again since last year.',
            'Returning the jacket was easy.',
            'The app logged me out twice at checkout.',
            'Thank you!'])[1 + floor(m.r[20] * 8)::int] END AS comment,
        -- checkout (must_be, 1..5), answered by 85 %: expected high (E 1 2 7 30 60 %),
        -- mostly delivered (P 4 5 11 30 50 %).
        CASE WHEN m.r[21] < .85 THEN 1 + width_bucket(m.r[22], ARRAY[.01, .03, .10, .40]::float8[]) END AS checkout_e,
        CASE WHEN m.r[21] < .85 THEN 1 + width_bucket(
            CASE WHEN m.r[23] < .6 THEN m.mood ELSE power(m.r[24], m.k) END,
            ARRAY[.04, .09, .20, .50]::float8[]) END AS checkout_p,
        -- advice (performance, 1..7), answered by 75 %: E 2 4 10 24 30 20 10 %,
        -- P 4 6 12 20 24 20 14 %.
        CASE WHEN m.r[25] < .75 THEN 1 + width_bucket(m.r[26], ARRAY[.02, .06, .16, .40, .70, .90]::float8[]) END AS advice_e,
        CASE WHEN m.r[25] < .75 THEN 1 + width_bucket(
            CASE WHEN m.r[27] < .6 THEN m.mood ELSE power(m.r[28], m.k) END,
            ARRAY[.04, .10, .22, .42, .66, .86]::float8[]) END AS advice_p,
        -- surprise (attractive, 1..5), answered by 80 %: little expected (E 20 35 30 10 5 %),
        -- more perceived (P 8 17 30 25 20 %).
        CASE WHEN m.r[29] < .8 THEN 1 + width_bucket(m.r[30], ARRAY[.20, .55, .85, .95]::float8[]) END AS surprise_e,
        CASE WHEN m.r[29] < .8 THEN 1 + width_bucket(
            CASE WHEN m.r[31] < .5 THEN m.mood ELSE power(m.r[32], m.k) END,
            ARRAY[.08, .25, .55, .80]::float8[]) END AS surprise_p
    FROM (
        SELECT d.*, power(d.r[1], d.k) AS mood
        FROM (
            SELECT c.*,
                (CASE c.tier WHEN 'gold' THEN .75 WHEN 'silver' THEN .95 WHEN 'standard' THEN 1.15 ELSE 1.3 END)
                * (CASE c.stage WHEN 'commitment' THEN .8 WHEN 'stable' THEN .9 WHEN 'exploration' THEN 1
                                WHEN 'acquaintance' THEN 1.1 WHEN 'prospect' THEN 1.2
                                WHEN 'dissolution' THEN 1.7 WHEN 'churned' THEN 2 ELSE 1 END)
                * (CASE c.region WHEN 'rural' THEN .95 ELSE 1 END)
                -- a year ago 8 % less happy, today 8 % happier
                * (.92 + .16 * c.age) AS k
            FROM (
                SELECT c.id AS customer_id, a.tier_key AS tier, c.lifecycle_stage AS stage,
                       c.region_type AS region, t.submitted_at,
                       extract(epoch FROM now() - t.submitted_at) / (365 * 86400) AS age,
                       (SELECT array_agg(random()) FROM generate_series(1, 40) WHERE c.id IS NOT NULL) AS r
                FROM customers c
                LEFT JOIN loyalty_accounts a ON a.customer_id = c.id
                CROSS JOIN LATERAL (SELECT now() - random() * interval '365 days' AS submitted_at
                                    WHERE c.id IS NOT NULL) t
                WHERE c.deleted_at IS NULL AND c.erased_at IS NULL
                ORDER BY t.submitted_at
            ) c
        ) d
    ) m
) s;
