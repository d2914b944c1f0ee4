-- Partitioned history, `webhook_attempts` step 2: the bound proved while writes go on.
ALTER TABLE webhook_attempts VALIDATE CONSTRAINT webhook_attempts_before_bound;
