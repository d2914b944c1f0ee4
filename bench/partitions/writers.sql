-- One writer's round, as the service writes, each statement its own transaction: an event
-- (the journal), the fan-out's delivery of it, the delivery's attempt recorded, and a
-- redemption (lot, ledger entry, balance, in the order ledger_debit.sql takes them).
\set c random(1, 50000)
INSERT INTO events (id, type, object_type, object_id, data)
VALUES (uuid_v7(), 'customer.updated', 'customer', 'bench', '{}') RETURNING id AS event \gset
INSERT INTO webhook_deliveries (id, webhook_id, event_id)
SELECT uuid_v7(), '00000000-0000-7000-8000-000000000001', id FROM events WHERE id = :event
RETURNING id AS delivery \gset
WITH u AS (UPDATE webhook_deliveries SET status = 'succeeded', attempts = 1
           WHERE id = :delivery RETURNING id)
INSERT INTO webhook_attempts (id, delivery_id, attempted_at, latency_ms)
SELECT uuid_v7(), id, now(), 5 FROM u;
WITH lot AS (UPDATE loyalty_lots l SET remaining = l.remaining - 1
             FROM bench_lots b WHERE b.k = :c AND l.id = b.id
             RETURNING l.id, l.customer_id),
     e AS (INSERT INTO loyalty_ledger (id, customer_id, posting_id, kind, points, lot_id,
                                       occurred_at, actor_type, actor_id)
           SELECT uuid_v7(), customer_id, uuid_v7(), 'redeem', -1, id, now(), 'system', 'bench'
           FROM lot RETURNING customer_id)
UPDATE loyalty_accounts a SET balance = a.balance - 1 FROM e WHERE a.customer_id = e.customer_id;
