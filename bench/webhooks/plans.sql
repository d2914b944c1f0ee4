-- The webhook worker's queries (src/webhooks/store.rs as of bf7bd7b: claim, a run of up to 100
-- deliveries per webhook; fan_out, its cursor bound as values) and the feed's
-- (src/events/store.rs: feed) under EXPLAIN (ANALYZE, BUFFERS) on the tables bench/webhooks.sh
-- loaded, run after the service stopped. Everything happens in one transaction that is rolled
-- back. The parameters are inlined: claim limit 32 webhooks (PARALLEL) and runs of 100 (RUN),
-- lease 21 s (the default timeout twice, plus 1), fan-out batch 1000 (FAN_OUT_BATCH), feed page 201 (limit 200 + 1).
--
-- `caught_up` names a webhook whose fan-out has passed the last event.
--
--   psql postgres://postgres@127.0.0.1:5432/rapport_webhook_bench -v caught_up=<webhook id> -f bench/webhooks/plans.sql
\pset pager off
\pset footer off
\echo '== tables after the run (dead tuples, sizes; autovacuum is on or off for the server:)'
SHOW autovacuum;
SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, last_autovacuum IS NOT NULL AS autovacuumed,
       pg_size_pretty(pg_total_relation_size(relid)) AS total_size
FROM pg_stat_user_tables
WHERE relname IN ('events', 'webhooks', 'webhook_deliveries', 'webhook_attempts') ORDER BY relname;
SELECT indexrelname, pg_size_pretty(pg_relation_size(indexrelid)) AS size, idx_scan
FROM pg_stat_user_indexes WHERE relname = 'webhook_deliveries' ORDER BY indexrelname;

BEGIN;
-- The script turned every webhook off before reading the feed; the worker only serves active ones.
UPDATE webhooks SET active = true;

\echo '== claim: the deliveries as the run left them (the worker runs this every round, and every interval when idle)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH heads AS (
  SELECT h.id FROM webhooks w CROSS JOIN LATERAL (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.webhook_id = w.id AND d.status = 'pending' ORDER BY d.seq LIMIT 1) h
  WHERE w.active),
picked AS (
  SELECT id, webhook_id, seq FROM webhook_deliveries
  WHERE id IN (SELECT id FROM heads) AND status = 'pending'
    AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
  ORDER BY next_attempt_at LIMIT 32
  FOR UPDATE SKIP LOCKED),
runs AS (
  SELECT r.id FROM picked p CROSS JOIN LATERAL (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.webhook_id = p.webhook_id AND d.status = 'pending' AND d.seq >= p.seq
    ORDER BY d.seq LIMIT 100) r),
claimed AS (
  UPDATE webhook_deliveries d
  SET lease_until = now() + make_interval(secs => 21), lease_token = '00000000-0000-7000-8000-0000000000aa'
  WHERE d.id IN (SELECT id FROM runs)
  RETURNING d.id, d.webhook_id, d.event_id, d.seq, d.attempts, d.first_attempt_at)
SELECT c.id, c.webhook_id, c.attempts, c.first_attempt_at, w.url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret,
       e.id AS event_id, e.type AS event_type, e.occurred_at, e.object_type,
       e.object_id, e.data, e.previous, e.request_id
FROM claimed c JOIN webhooks w ON w.id = c.webhook_id JOIN events e ON e.id = c.event_id
ORDER BY c.webhook_id, c.seq;

\echo '== claim: every webhook with a backlog (its last 2000 deliveries put back to pending)'
UPDATE webhook_deliveries SET status = 'pending', completed_at = NULL, lease_until = NULL
WHERE id IN (SELECT id FROM (
  SELECT id, row_number() OVER (PARTITION BY webhook_id ORDER BY seq DESC) AS n
  FROM webhook_deliveries) t WHERE n <= 2000);
-- Free the heads the claim above just leased.
UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL WHERE status = 'pending';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH heads AS (
  SELECT h.id FROM webhooks w CROSS JOIN LATERAL (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.webhook_id = w.id AND d.status = 'pending' ORDER BY d.seq LIMIT 1) h
  WHERE w.active),
picked AS (
  SELECT id, webhook_id, seq FROM webhook_deliveries
  WHERE id IN (SELECT id FROM heads) AND status = 'pending'
    AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
  ORDER BY next_attempt_at LIMIT 32
  FOR UPDATE SKIP LOCKED),
runs AS (
  SELECT r.id FROM picked p CROSS JOIN LATERAL (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.webhook_id = p.webhook_id AND d.status = 'pending' AND d.seq >= p.seq
    ORDER BY d.seq LIMIT 100) r),
claimed AS (
  UPDATE webhook_deliveries d
  SET lease_until = now() + make_interval(secs => 21), lease_token = '00000000-0000-7000-8000-0000000000aa'
  WHERE d.id IN (SELECT id FROM runs)
  RETURNING d.id, d.webhook_id, d.event_id, d.seq, d.attempts, d.first_attempt_at)
SELECT c.id, c.webhook_id, c.attempts, c.first_attempt_at, w.url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret,
       e.id AS event_id, e.type AS event_type, e.occurred_at, e.object_type,
       e.object_id, e.data, e.previous, e.request_id
FROM claimed c JOIN webhooks w ON w.id = c.webhook_id JOIN events e ON e.id = c.event_id
ORDER BY c.webhook_id, c.seq;

\echo '== fan-out: a new webhook for customer.created, its first batch of 1000 events'
INSERT INTO webhooks (id, url, secret, event_types, cursor_txid, cursor_position)
VALUES ('00000000-0000-7000-8000-000000000001', 'http://127.0.0.1:9/plans', 'whsec_plans',
        '{customer.created}', '0', 0);
SELECT cursor_txid::text::bigint AS cur_txid, cursor_position AS cur_position
FROM webhooks WHERE id = '00000000-0000-7000-8000-000000000001' \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH w AS (SELECT * FROM webhooks WHERE id = '00000000-0000-7000-8000-000000000001'),
scanned AS (
  SELECT e.id, e.type, e.data, e.txid, e.position FROM events e
  WHERE (e.txid, e.position) > (:'cur_txid'::text::xid8, :cur_position)
    AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
    AND e.type <> 'webhook.ping'
  ORDER BY e.txid, e.position LIMIT 1000),
queued AS (
  INSERT INTO webhook_deliveries (id, webhook_id, event_id)
  SELECT uuid_v7(), w.id, s.id FROM scanned s, w
  WHERE (cardinality(w.event_types) = 0 OR s.type = ANY(w.event_types))
    AND (w.filter IS NULL OR s.data @> w.filter)
  ORDER BY s.txid, s.position
  ON CONFLICT (webhook_id, event_id) WHERE replay_of IS NULL DO NOTHING
  RETURNING 1),
last AS (SELECT txid, position FROM scanned ORDER BY txid DESC, position DESC LIMIT 1)
UPDATE webhooks SET cursor_txid = last.txid, cursor_position = last.position
FROM last WHERE webhooks.id = '00000000-0000-7000-8000-000000000001'
RETURNING (SELECT count(*) FROM scanned) AS scanned, (SELECT count(*) FROM queued) AS queued;

\echo '== fan-out: a webhook that has passed the last event (every round runs this for every active webhook)'
SELECT cursor_txid::text::bigint AS cur_txid, cursor_position AS cur_position
FROM webhooks WHERE id = :'caught_up' \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH w AS (SELECT * FROM webhooks WHERE id = :'caught_up'),
scanned AS (
  SELECT e.id, e.type, e.data, e.txid, e.position FROM events e
  WHERE (e.txid, e.position) > (:'cur_txid'::text::xid8, :cur_position)
    AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
    AND e.type <> 'webhook.ping'
  ORDER BY e.txid, e.position LIMIT 1000),
queued AS (
  INSERT INTO webhook_deliveries (id, webhook_id, event_id)
  SELECT uuid_v7(), w.id, s.id FROM scanned s, w
  WHERE (cardinality(w.event_types) = 0 OR s.type = ANY(w.event_types))
    AND (w.filter IS NULL OR s.data @> w.filter)
  ORDER BY s.txid, s.position
  ON CONFLICT (webhook_id, event_id) WHERE replay_of IS NULL DO NOTHING
  RETURNING 1),
last AS (SELECT txid, position FROM scanned ORDER BY txid DESC, position DESC LIMIT 1)
UPDATE webhooks SET cursor_txid = last.txid, cursor_position = last.position
FROM last WHERE webhooks.id = :'caught_up'
RETURNING (SELECT count(*) FROM scanned) AS scanned, (SELECT count(*) FROM queued) AS queued;

\echo '== feed: a page of 201 after the middle event (the service binds the cursor as parameters)'
SELECT txid AS mid_txid, position AS mid_position FROM events ORDER BY txid, position
OFFSET (SELECT count(*) / 2 FROM events) LIMIT 1 \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, type AS type_, occurred_at, object_type, object_id, data, previous,
       request_id, txid::text::bigint AS txid, position
FROM events
WHERE (txid, position) > (:'mid_txid'::text::xid8, :mid_position)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
  AND type <> 'webhook.ping' AND (cardinality('{}'::text[]) = 0 OR type = ANY('{}'::text[]))
ORDER BY events.txid, events.position LIMIT 201;

ROLLBACK;
