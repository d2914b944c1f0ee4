-- Seeds a database migrated up to 2026-12-05-000056 (bench/partitions.sh) with :n events,
-- deliveries (and attempts) and ledger entries from before the partitioning (all before next month).
CREATE FUNCTION pg_temp.v7_at(t timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(overlay(uuid_send(uuid_v7()) PLACING substring(uuid_send(uuid_v7_floor(t)) FROM 1 FOR 6) FROM 1 FOR 6), 'hex')::uuid
$$;
INSERT INTO webhooks (id, url, secret)
SELECT ('00000000-0000-7000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid,
       'https://example.com/hook', 'x' FROM generate_series(1, 10) n;
INSERT INTO events (id, type, object_type, object_id, data)
SELECT pg_temp.v7_at(now() - make_interval(secs => n * 2)),
       'customer.updated', 'customer', n::text, '{"name": "x"}'
FROM generate_series(1, :n) n;
INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, completed_at)
SELECT uuid_v7(), ('00000000-0000-7000-8000-0000000000' || lpad((1 + (position % 10))::text, 2, '0'))::uuid,
       id, CASE WHEN position % 100 = 0 THEN 'pending' ELSE 'succeeded' END, 1, now()
FROM events;
INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms)
SELECT uuid_v7(), id, now(), 200, 12 FROM webhook_deliveries;
-- A few replays.
INSERT INTO webhook_deliveries (id, webhook_id, event_id, replay_of, status)
SELECT uuid_v7(), webhook_id, event_id, id, 'succeeded' FROM webhook_deliveries
WHERE seq % 1000 = 0;
-- Members: 50 000 customers with one lot each, and :n ledger entries among them.
INSERT INTO customers (id, kind, name)
SELECT uuid_v7(), 'individual', 'm' || n FROM generate_series(1, 50000) n;
INSERT INTO loyalty_accounts (customer_id, balance) SELECT id, 1000000 FROM customers;
INSERT INTO loyalty_lots (id, customer_id, earned_at, points, remaining)
SELECT uuid_v7(), id, now(), 1000000, 1000000 FROM customers;
CREATE TABLE bench_lots AS SELECT (row_number() OVER ())::int AS k, id, customer_id FROM loyalty_lots;
ALTER TABLE bench_lots ADD PRIMARY KEY (k);
INSERT INTO loyalty_ledger (id, customer_id, posting_id, kind, points, lot_id, occurred_at,
                            actor_type, actor_id)
SELECT pg_temp.v7_at(now() - make_interval(secs => n * 2)), l.customer_id,
       uuid_v7(), 'adjust', 1 + n % 50, l.id, now(), 'system', 'seed'
FROM generate_series(1, :n) n JOIN bench_lots l ON l.k = 1 + n % 50000
ORDER BY n DESC;
ANALYZE;
