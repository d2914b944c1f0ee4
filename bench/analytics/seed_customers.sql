-- The analytics data set, step 1: staff, and the customers with what each will be given.
-- Variables: :customers (N), :'t0' (the seed's "now"). Runs with the tables' secondary indexes
-- dropped and foreign-key triggers off (session_replication_role = replica): every reference
-- is built consistent (ids are functions of a number).
--
-- Ids are deterministic and ordered like uuid v7 (creation order): users
-- 018f0000-…-<n>, customers 018f0001-…-<n>, purchases 018f0002-…, interactions
-- 018f0003-…, opportunities 018f0004-…

-- 300 staff users: account managers and the opportunities' owners.
INSERT INTO users (id, email, name, role, created_at, updated_at)
SELECT ('018f0000-0000-7000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       'analytics-bench-' || u || '@rapport.example', 'Bench Staff ' || u,
       CASE WHEN u % 10 = 0 THEN 'manager' ELSE 'agent' END,
       :'t0'::timestamptz - interval '2200 days', :'t0'::timestamptz - interval '2200 days'
FROM generate_series(1, 300) u;

-- What each customer gets (dropped once the seed is done):
--   stage   prospect 15 %, acquaintance 15, exploration 15, stable 25, commitment 15,
--           dissolution 7, churned 8; relationship levels 40/25/15/12/8 %.
--   k       purchases: 10 % of prospects and 92 % of the others buy; a buyer's count is
--           1 + ⌊5 × (U^(−1/1.7) − 1)⌋ (a Lomax/Pareto law, α = 1.7), at most 500.
--   f       the customer's spending scale, U^(−1/2.2) (Pareto, α = 2.2), at most 60: a purchase
--           is about 20 EUR × f, so value (k × f) is concentrated as in a Pareto ranking.
--   buy_from .. buy_to: purchases fall uniformly in it: from the creation (at most two years
--           back) to now, or, for dissolution, churned and 15 % of the others, to a moment in
--           between when they stopped buying.
--   ki      interactions: ⌊6 × U^1.5⌋ (0 to 5, about two on average).
CREATE UNLOGGED TABLE bench_c AS
WITH x AS (
    SELECT n, random() AS r_stage, random() AS r_level, random() AS r_buy, 1 - random() AS r_k,
           1 - random() AS r_f, random() AS r_stop, random() AS r_stop_at, random() AS r_del,
           random() AS r_ki, random() AS r_mgr,
           -- created over six years, in the order of n (as v7 ids are)
           :'t0'::timestamptz - (1 - (n - 1)::float8 / :customers) * interval '2190 days'
               - interval '1 hour' AS created_at
    FROM generate_series(1, :customers) n),
y AS (
    SELECT x.*,
           CASE WHEN r_stage < 0.15 THEN 'prospect' WHEN r_stage < 0.30 THEN 'acquaintance'
                WHEN r_stage < 0.45 THEN 'exploration' WHEN r_stage < 0.70 THEN 'stable'
                WHEN r_stage < 0.85 THEN 'commitment' WHEN r_stage < 0.92 THEN 'dissolution'
                ELSE 'churned' END AS stage,
           greatest(created_at, :'t0'::timestamptz - interval '730 days') AS buy_from
    FROM x)
SELECT n, ('018f0001-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid AS id, created_at, stage,
       CASE WHEN r_level < 0.40 THEN 'basic' WHEN r_level < 0.65 THEN 'reactive'
            WHEN r_level < 0.80 THEN 'accountable' WHEN r_level < 0.92 THEN 'proactive'
            ELSE 'partnership' END AS level,
       CASE WHEN r_del < 0.01 THEN created_at + r_del * 100 * (:'t0'::timestamptz - created_at) END AS deleted_at,
       CASE WHEN r_mgr < 0.6 THEN ('018f0000-0000-7000-8000-'
            || lpad(to_hex(1 + floor(r_mgr / 0.6 * 300)::int), 12, '0'))::uuid END AS manager,
       CASE WHEN r_buy < CASE stage WHEN 'prospect' THEN 0.10 ELSE 0.92 END
            THEN least(500, 1 + floor(5.0 * (r_k ^ (-1 / 1.7) - 1)))::int ELSE 0 END AS k,
       least(60, r_f ^ (-1 / 2.2)) AS f,
       buy_from,
       CASE WHEN stage IN ('dissolution', 'churned') OR r_stop < 0.15
            THEN buy_from + r_stop_at * (:'t0'::timestamptz - buy_from)
            ELSE :'t0'::timestamptz END AS buy_to,
       floor(6 * r_ki ^ 1.5)::int AS ki
FROM y;

INSERT INTO customers (id, kind, name, region_type, lifecycle_stage, relationship_level,
                       account_manager_id, source, created_at, updated_at, deleted_at)
SELECT id, CASE WHEN n % 7 = 0 THEN 'organization' ELSE 'individual' END,
       CASE WHEN n % 7 = 0 THEN 'Bench Company ' ELSE 'Bench Customer ' END || n,
       CASE WHEN n % 20 = 0 THEN NULL WHEN n % 3 = 0 THEN 'rural' ELSE 'urban' END,
       stage, level, manager, 'analytics-bench', created_at,
       coalesce(deleted_at, created_at), deleted_at
FROM bench_c
ORDER BY n;
