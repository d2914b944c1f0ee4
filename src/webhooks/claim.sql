-- Claims work for the delivery worker: for up to $1 webhooks (active ones) whose oldest
-- pending delivery is due and not leased, that delivery and up to $2 - 1 pending ones after
-- it, leased for $3 seconds under the token $4 (skipping rows another worker holds). Answers
-- each claimed delivery with its webhook's URL and sealed secrets and its event, grouped by
-- webhook in delivery order.
WITH heads AS (
  SELECT h.id FROM webhooks w CROSS JOIN LATERAL (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.webhook_id = w.id AND d.status = 'pending' ORDER BY d.seq LIMIT 1) h
  WHERE w.active),
picked AS (
  SELECT id, webhook_id, seq FROM webhook_deliveries
  WHERE id IN (SELECT id FROM heads) AND status = 'pending'
    AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
  ORDER BY next_attempt_at LIMIT $1
  FOR UPDATE SKIP LOCKED),
runs AS (
  SELECT r.id FROM picked p CROSS JOIN LATERAL (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.webhook_id = p.webhook_id AND d.status = 'pending' AND d.seq >= p.seq
    ORDER BY d.seq LIMIT $2) r),
claimed AS (
  UPDATE webhook_deliveries d
  SET lease_until = now() + make_interval(secs => $3), lease_token = $4
  WHERE d.id IN (SELECT id FROM runs)
  RETURNING d.id, d.webhook_id, d.event_id, d.seq, d.attempts, d.first_attempt_at)
SELECT c.id, c.webhook_id, c.attempts, c.first_attempt_at, w.url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
         AS previous_secret,
       e.id AS event_id, e.type AS event_type, e.occurred_at, e.object_type,
       e.object_id, e.data, e.previous, e.request_id
FROM claimed c JOIN webhooks w ON w.id = c.webhook_id JOIN events e ON e.id = c.event_id
ORDER BY c.webhook_id, c.seq
