-- The analytics data set, step 2: each customer's k purchases (about six million for a
-- million customers), uniformly in the customer's buying span (bench_c, seed_customers.sql).
-- 95 % in EUR, 5 % in USD; amounts about 20 EUR × the customer's scale f × U(0.3, 1.7), one
-- purchase in 50 eight times that; 60 % with a cost (35 to 75 % of the amount); 1.5 %
-- refunded in full and 1.5 % in part.
CREATE TEMP SEQUENCE purchase_seq;

INSERT INTO purchases (id, customer_id, currency, amount, cost, refunded, occurred_at, channel,
                       created_at, updated_at)
SELECT ('018f0002-0000-7000-8000-' || lpad(to_hex(nextval('purchase_seq')), 12, '0'))::uuid,
       customer_id, currency, amount,
       CASE WHEN r_cost < 0.6 THEN round(amount * (0.35 + 0.4 * r_share))::bigint END,
       CASE WHEN r_refund < 0.015 THEN amount
            WHEN r_refund < 0.03 THEN floor(amount * r_share)::bigint
            ELSE 0 END,
       occurred_at, channel, occurred_at, occurred_at
FROM (
    SELECT c.id AS customer_id,
           CASE WHEN random() < 0.05 THEN 'USD' ELSE 'EUR' END AS currency,
           round(2000 * c.f * (0.3 + 1.4 * random())
                 * CASE WHEN random() < 0.02 THEN 8 ELSE 1 END)::bigint AS amount,
           c.buy_from + random() * (c.buy_to - c.buy_from) AS occurred_at,
           (ARRAY['in_store', 'web', 'phone', 'email'])[1 + floor(random() * 4)::int] AS channel,
           random() AS r_cost, random() AS r_share, random() AS r_refund
    FROM bench_c c CROSS JOIN LATERAL generate_series(1, c.k) AS i
    WHERE c.k > 0
    OFFSET 0) p;
