#!/bin/bash
# The online partitioning of `webhook_deliveries` and `loyalty_ledger` (migrations
# 2026-12-06-000010 to 000022) measured under writes, as docs/scaling.md reports it:
#
#   bench/partitions.sh <database> [rows=1000000] [seconds=30]
#
# <database> is a scratch database migrated up to 2026-12-05-000056 and not further (say a
# copy of a test template from before these migrations: CREATE DATABASE x TEMPLATE y); it is
# seeded with `rows` events, deliveries, attempts and ledger entries, then four pgbench
# clients write (bench/partitions/writers.sql) while each step runs, timed. Drop the
# database afterwards.
set -euo pipefail
db=$1; rows=${2:-1000000}; seconds=${3:-30}
pg=(-h 127.0.0.1 -U postgres)
here=$(cd "$(dirname "$0")" && pwd)
psql "${pg[@]}" -d "$db" -v ON_ERROR_STOP=1 -q -v n="$rows" -f "$here/partitions/seed.sql"
psql "${pg[@]}" -d "$db" -Atc "SELECT 'deliveries ' || pg_size_pretty(pg_total_relation_size('webhook_deliveries')) || ', attempts ' || pg_size_pretty(pg_total_relation_size('webhook_attempts')) || ', ledger ' || pg_size_pretty(pg_total_relation_size('loyalty_ledger'))"
logs=$(mktemp -d)
(cd "$logs" && pgbench "${pg[@]}" -n -M extended -c 4 -j 2 -T "$seconds" -l \
    -f "$here/partitions/writers.sql" "$db" > pgbench.out 2>&1) &
bench=$!
sleep 5
for step in "$here"/../migrations/2026-12-06-*; do
    # A step with metadata.toml runs outside a transaction, as the service runs it.
    single=(-1); [ -f "$step/metadata.toml" ] && single=()
    start=$(date +%s.%N)
    psql "${pg[@]}" -d "$db" -v ON_ERROR_STOP=1 -q "${single[@]}" -f "$step/up.sql" > /dev/null
    echo "$(basename "$step") $(echo "$(date +%s.%N) - $start" | bc) s"
done
wait $bench
grep -E "processed|failed|tps" "$logs/pgbench.out"
cat "$logs"/pgbench_log.* | awk '$3 != "failed" && $3 + 0 > max { max = $3 + 0 }
    END { printf "slowest round %.1f ms\n", max / 1000 }'
rm -r "$logs"
