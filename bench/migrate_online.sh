#!/usr/bin/env bash
# Issue 24's "migrating an existing database is online, tested on the bench data set": a
# database as it stood before the partitioned history (every migration up to
# 2026-12-05-000031, applied as diesel applies them), filled by the bench's own seed tool
# (bench/run.sh's data set: CUSTOMERS customers, 2 interactions and 4 purchases each, their
# points ledger) plus HISTORY events, each with a webhook delivery and its attempt; then
# every later migration applied step by step while four pgbench clients write as the service
# does (bench/partitions/writers.sql: an event, its delivery and attempt, a redemption), each
# step timed, with the writers' failed rounds and slowest round at the end.
#
#   bench/migrate_online.sh [customers=1000000] [history=1000000]
#
# Needs the bench tools built (bench/target/release/seed) and PostgreSQL at BENCH_PG; its
# database, rapport_bench_migrate, is dropped at the end unless BENCH_KEEP is set.
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-1000000}
HISTORY=${2:-1000000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=rapport_bench_migrate
LAST_BEFORE=2026-12-05-000031
q() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }
# One migration as diesel runs it: in one transaction unless its metadata.toml says otherwise.
apply() {
    local one=-1
    grep -qs 'run_in_transaction *= *false' "$1/metadata.toml" && one=
    psql "$PG/$DB" -qX -v ON_ERROR_STOP=1 $one -f "$1/up.sql" >/dev/null
}

psql "$PG/postgres" -qX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
for m in migrations/*/; do
    [[ "$(basename "$m")" > "$LAST_BEFORE" ]] && break
    apply "$m"
done
echo "migrated up to $LAST_BEFORE; seeding $CUSTOMERS customers"
SEED=$(./bench/target/release/seed --database-url "$PG/$DB" --customers "$CUSTOMERS" \
    --interactions 2 --purchases 4 --out "$(mktemp -d)")
echo "seed: $SEED"
q -v n="$HISTORY" <<'SQL'
INSERT INTO webhooks (id, url, secret)
SELECT ('00000000-0000-7000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid,
       'https://example.com/hook', 'x' FROM generate_series(1, 10) n;
INSERT INTO events (id, type, object_type, object_id, data)
SELECT uuid_v7(), 'customer.updated', 'customer', n::text, '{"name": "x"}'
FROM generate_series(1, :n) n;
INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, completed_at)
SELECT uuid_v7(), ('00000000-0000-7000-8000-0000000000' || lpad((1 + (position % 10))::text, 2, '0'))::uuid,
       id, CASE WHEN position % 100 = 0 THEN 'pending' ELSE 'succeeded' END, 1, now()
FROM events;
INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms)
SELECT uuid_v7(), id, now(), 200, 12 FROM webhook_deliveries;
-- The writers redeem a point from one of 50 000 members' lots.
CREATE TABLE bench_lots AS
SELECT (row_number() OVER ())::int AS k, id, customer_id
FROM (SELECT id, customer_id FROM loyalty_lots WHERE remaining >= 1000 LIMIT 50000) l;
ALTER TABLE bench_lots ADD PRIMARY KEY (k);
VACUUM ANALYZE;
SQL
q -c "SELECT 'events ' || pg_size_pretty(pg_total_relation_size('events'))
        || ', deliveries ' || pg_size_pretty(pg_total_relation_size('webhook_deliveries'))
        || ', attempts ' || pg_size_pretty(pg_total_relation_size('webhook_attempts'))
        || ', audit ' || pg_size_pretty(pg_total_relation_size('audit_events'))
        || ', ledger ' || pg_size_pretty(pg_total_relation_size('loyalty_ledger'))
        || ' (' || (SELECT count(*) FROM loyalty_ledger) || ' entries), database '
        || pg_size_pretty(pg_database_size(current_database()))"
logs=$(mktemp -d)
# The writers run for WRITE_SECONDS (long enough for every step, else say so below).
(cd "$logs" && pgbench -h 127.0.0.1 -U postgres -n -M extended -c 4 -j 2 -T "${WRITE_SECONDS:-150}" -l \
    -f "$OLDPWD/bench/partitions/writers.sql" "$DB" > pgbench.out 2>&1) &
bench=$!
sleep 5
start_all=$(date +%s.%N)
for m in migrations/*/; do
    [[ "$(basename "$m")" > "$LAST_BEFORE" ]] || continue
    start=$(date +%s.%N)
    apply "$m"
    printf '%-48s %6.2f s\n' "$(basename "$m")" "$(echo "$(date +%s.%N) - $start" | bc)"
done
all=$(echo "$(date +%s.%N) - $start_all" | bc)
printf 'all steps: %.1f s (the writers ran %s s from 5 s before the first)\n' "$all" "${WRITE_SECONDS:-150}"
wait $bench || true
grep -E "processed|failed|tps" "$logs/pgbench.out" || tail -5 "$logs/pgbench.out"
cat "$logs"/pgbench_log.* | awk '$3 != "failed" && $3 + 0 > max { max = $3 + 0 }
    END { printf "slowest round %.1f ms\n", max / 1000 }'
cat "$logs"/pgbench_log.* | awk '{ n++ } $3 == "failed" { f++ } END { printf "rounds logged %d, failed %d\n", n, f }'
rm -r "$logs"
[ -n "${BENCH_KEEP:-}" ] || psql "$PG/postgres" -qX -c "DROP DATABASE $DB WITH (FORCE)"
