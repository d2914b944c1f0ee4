-- pgbench script for bench/webhooks.sh: one single-row UPDATE per transaction, on one
-- connection: how many durable commits per second this PostgreSQL makes in a row.
UPDATE bench_commit SET n = n + 1;
