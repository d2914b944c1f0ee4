-- The analytics data set, step 3: each customer's ki interactions (about two million for a
-- million customers; bench_c, seed_customers.sql), uniformly from the creation (at most two
-- years back) to now. 5 % are complaints (severity low 40 %, medium 30, high 20, critical 10;
-- status open 12 %, in_progress 8, resolved 40, closed 40; open and in-progress ones opened
-- in the last 60 days); 1 % are pending follow-ups (due within 30 days, not done yet).
CREATE TEMP SEQUENCE interaction_seq;

INSERT INTO interactions (id, customer_id, channel, direction, kind, subject, occurred_at,
                          duration_seconds, staff_id, due_at, severity, status, in_progress_at,
                          resolved_at, closed_at, assignee_id, created_at, updated_at)
SELECT ('018f0003-0000-7000-8000-' || lpad(to_hex(nextval('interaction_seq')), 12, '0'))::uuid,
       customer_id, channel, direction, kind,
       CASE WHEN kind = 'complaint' THEN 'Bench complaint' ELSE 'Bench ' || kind END,
       occurred_at, CASE WHEN occurred_at IS NOT NULL THEN 60 + floor(r_x * 900)::int END,
       staff_id, due_at,
       CASE WHEN kind = 'complaint' THEN severity END,
       status,
       CASE WHEN status IN ('in_progress', 'resolved', 'closed') THEN occurred_at + interval '1 hour' END,
       CASE WHEN status IN ('resolved', 'closed') THEN occurred_at + r_x * interval '10 days' END,
       CASE WHEN status = 'closed' THEN occurred_at + r_x * interval '10 days' + interval '2 days' END,
       CASE WHEN kind = 'complaint' OR due_at IS NOT NULL THEN staff_id END,
       coalesce(occurred_at, :'t0'::timestamptz), coalesce(occurred_at, :'t0'::timestamptz)
FROM (
    SELECT customer_id, channel, direction, kind, staff_id, severity, r_x,
           CASE WHEN kind = 'complaint' THEN
               CASE WHEN r_status < 0.12 THEN 'open' WHEN r_status < 0.20 THEN 'in_progress'
                    WHEN r_status < 0.60 THEN 'resolved' ELSE 'closed' END END AS status,
           CASE WHEN pending THEN NULL
                WHEN kind = 'complaint' AND r_status < 0.20
                    THEN :'t0'::timestamptz - r_at * interval '60 days'
                ELSE since + r_at * (:'t0'::timestamptz - since) END AS occurred_at,
           CASE WHEN pending THEN :'t0'::timestamptz + r_at * interval '30 days' END AS due_at
    FROM (
        SELECT customer_id, r_status, r_at, r_x, since,
               (ARRAY['phone', 'email', 'visit', 'in_store', 'web', 'chat'])[1 + floor(r_channel * 6)::int] AS channel,
               CASE WHEN r_direction < 0.5 THEN 'inbound' ELSE 'outbound' END AS direction,
               CASE WHEN r_kind < 0.05 THEN 'complaint'
                    WHEN r_kind < 0.06 THEN 'callback'
                    ELSE (ARRAY['inquiry', 'purchase', 'feedback', 'service', 'promotion', 'meeting', 'note'])
                         [1 + floor((r_kind - 0.06) / 0.94 * 7)::int] END AS kind,
               r_kind >= 0.05 AND r_kind < 0.06 AS pending,
               ('018f0000-0000-7000-8000-' || lpad(to_hex(1 + floor(r_staff * 300)::int), 12, '0'))::uuid AS staff_id,
               (ARRAY['low', 'low', 'low', 'low', 'medium', 'medium', 'medium', 'high', 'high', 'critical'])
                   [1 + floor(r_severity * 10)::int] AS severity
        FROM (
            SELECT c.id AS customer_id, random() AS r_kind, random() AS r_channel,
                   random() AS r_direction, random() AS r_staff, random() AS r_severity,
                   random() AS r_status, random() AS r_at, random() AS r_x,
                   greatest(c.created_at, :'t0'::timestamptz - interval '730 days') AS since
            FROM bench_c c CROSS JOIN LATERAL generate_series(1, c.ki) AS i
            WHERE c.ki > 0
            OFFSET 0) r
        OFFSET 0) a
    OFFSET 0) b;
