ALTER TABLE webhook_attempts DROP CONSTRAINT IF EXISTS webhook_attempts_before_bound;
