#!/usr/bin/env bash
# Duplicate finding at scale: seeds N customers (default 100 000; `bench/duplicates.sh
# 1000000` for the million) of which 2 % have a planted duplicate, one rule each in turn
# (email with dots/+tag/case, the same phone, a similar name at the same address, an
# external id in another system's attribute), and measures:
#  - the candidates' backfill (the same refresh the triggers run, over every customer's keys
#    in chunks) and precision and recall of the listed pairs against the planted ones;
#  - the list's own SQL (src/duplicates/list.sql): the first page, a later page (the pair
#    at position 10 000's cursor, or the middle when fewer) and the first page of one reason,
#    each repeated by pgbench (p50 and p99), beside a reference from the same run: the first
#    page of the customer list's own index (51 customers by id);
#  - what the candidates cost a write: 20 batches of 5 000 new customers (1 in 10 a
#    duplicate of an existing one), each batch one INSERT as an import writes it, with the
#    duplicate triggers on and off.
# Writes bench/results/duplicates.json (with the commit and N).
#
# Needs psql, pgbench and PostgreSQL at BENCH_PG (default postgres://postgres@127.0.0.1:5432).
# It uses its own database, rapport_bench_dupes, dropped and made again each run (kept
# with BENCH_KEEP=1 to measure again without seeding).
set -euo pipefail
N=${1:-100000}
REPS=${BENCH_REPS:-200}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=rapport_bench_dupes
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/results
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
q() { psql "$PG/$DB" -qAt -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

if [ "${BENCH_KEEP:-0}" != 1 ]; then
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
# Each migration in one transaction, as diesel runs them, unless it says otherwise.
for m in "$ROOT"/migrations/*/; do
  one=-1
  grep -qs 'run_in_transaction *= *false' "$m/metadata.toml" && one=
  psql "$PG/$DB" -q $one -v ON_ERROR_STOP=1 -f "$m/up.sql" >/dev/null
done

echo "seeding $N customers, 2 % with a planted duplicate"
q <<SQL
SET synchronous_commit = off;
ALTER TABLE customers DISABLE TRIGGER USER;
-- The originals: unique emails, phones, addresses and external ids, names from a small
-- pool (so that names alone repeat, as they do).
INSERT INTO customers (id, kind, name, email, phone, address, external_id, attributes)
SELECT uuid_v7(), 'individual',
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Ken','Frances'])[1 + i % 8]
         || ' ' || (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Thompson','Allen'])[1 + (i / 8) % 8]
         || ' ' || i,
       'user' || i || '@example.com',
       '+49' || (3000000000 + i)::text,
       jsonb_build_object('line1', (i % 997) || ' Main Street ' || (i / 997),
                          'postal_code', (10000 + i % 89999)::text, 'city', 'Berlin'),
       'shop-' || i,
       '{}'::jsonb
FROM generate_series(1, $N) i;
CREATE TABLE bench_truth (a uuid, b uuid, rule text);
-- The duplicates: every 50th customer gets one, by one rule in turn.
WITH src AS (
    SELECT c.*, row_number() OVER (ORDER BY id) AS n FROM customers c
), picked AS (
    SELECT * FROM src WHERE n % 50 = 0
), made AS (
    INSERT INTO customers (id, kind, name, email, phone, address, attributes)
    SELECT uuid_v7(), 'individual',
           CASE WHEN (n / 50) % 4 = 2 THEN name || 'e' ELSE 'Dup ' || n END,
           CASE WHEN (n / 50) % 4 = 0
                THEN upper(substr(email, 1, 2)) || '.' || substr(split_part(email, '@', 1), 3)
                     || '+crm@' || split_part(email, '@', 2) END,
           CASE WHEN (n / 50) % 4 = 1 THEN phone END,
           CASE WHEN (n / 50) % 4 = 2 THEN address END,
           CASE WHEN (n / 50) % 4 = 3 THEN jsonb_build_object('shop_id', external_id)
                ELSE '{}'::jsonb END
    FROM picked
    RETURNING id, name
)
INSERT INTO bench_truth
SELECT least(p.id, m.id), greatest(p.id, m.id), (ARRAY['email','phone','name_address','external_id'])[1 + (p.n / 50) % 4]
FROM picked p JOIN LATERAL (SELECT id FROM made WHERE made.name = 'Dup ' || p.n OR made.name = p.name || 'e' LIMIT 1) m ON true;
ALTER TABLE customers ENABLE TRIGGER USER;
ANALYZE;
SQL

# The candidates of customers written with the triggers off: every key refreshed, 50 000
# customers at a time (a migration on a large database does the same in one statement).
echo "backfilling the candidates"
t0=$(now)
q -f "$ROOT/bench/duplicates_backfill.sql"
q -c "ANALYZE customer_duplicate_pairs" -c "ANALYZE customer_duplicate_links"
backfill=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
echo "backfill: ${backfill} s"
else
backfill=null
fi

truth=$(q -c "SELECT count(*) FROM bench_truth")
customers=$(q -c "SELECT count(*) FROM customers")
echo "customers: $customers, planted pairs: $truth"

SQL_TEXT=$(grep -v '^--' "$ROOT/src/duplicates/list.sql")
# The list's SQL with its parameters: owner, reason, cursor (rank, a, b), page size + 1.
page_sql() {
  local sql="$SQL_TEXT"
  sql=${sql//\$1::uuid/NULL::uuid}; sql=${sql//\$1/NULL::uuid}
  sql=${sql//\$2::text/$2::text}; sql=${sql//\$2/$2}
  sql=${sql//\$3::int/$3::int}; sql=${sql//\$4::uuid/$4::uuid}; sql=${sql//\$5::uuid/$5::uuid}
  sql=${sql//\$6/$1}
  echo "$sql"
}
NIL="'00000000-0000-0000-0000-000000000000'"
q -c "DROP TABLE IF EXISTS listed" -c "CREATE TABLE listed AS $(page_sql 100000000 NULL -1 "$NIL" "$NIL")"
read -r found hits < <(q -F ' ' -c "SELECT (SELECT count(*) FROM listed),
  (SELECT count(*) FROM listed l JOIN bench_truth t ON t.a = l.a_id AND t.b = l.b_id)")
echo "listed pairs: $found, of them planted: $hits"
precision=$(awk -v f="$found" -v h="$hits" 'BEGIN { printf "%.4f", (f ? h / f : 0) }')
recall=$(awk -v t="$truth" -v h="$hits" 'BEGIN { printf "%.4f", (t ? h / t : 0) }')
echo "precision: $precision, recall: $recall"
by_rule=$(q -c "SELECT json_object_agg(rule, json_build_object('found', found, 'planted', planted))
  FROM (SELECT t.rule, count(l.a_id) AS found, count(*) AS planted FROM bench_truth t
        LEFT JOIN listed l ON t.a = l.a_id AND t.b = l.b_id GROUP BY 1) r")
echo "by rule: $by_rule"

# A later page: the cursor of the pair at position 10 000 (the middle of a shorter list).
pos=$(( found > 20000 ? 10000 : (found / 2 > 0 ? found / 2 : 1) ))
read -r crank ca cb < <(q -F ' ' -c "SELECT 100 - score, a_id, b_id FROM listed
  ORDER BY 100 - score, a_id, b_id OFFSET $((pos - 1)) LIMIT 1")
page_sql 51 NULL -1 "$NIL" "$NIL" > "$TMP/first.sql"
page_sql 51 NULL "$crank" "'$ca'" "'$cb'" > "$TMP/later.sql"
page_sql 51 "'name_address'" -1 "$NIL" "$NIL" > "$TMP/reason.sql"
echo "SELECT id, name, email FROM customers WHERE deleted_at IS NULL ORDER BY id LIMIT 51" > "$TMP/reference.sql"
for f in first later reason reference; do tr '\n' ' ' < "$TMP/$f.sql" > "$TMP/$f.one" && echo >> "$TMP/$f.one"; done

# p50 and p99 in ms of REPS runs of a one-statement script (pgbench's per-run log).
timed() {
  (cd "$TMP" && rm -f pgbench_log.* && PGOPTIONS='-c jit=off' pgbench -n -M prepared -t "$REPS" -c 1 \
     -l -f "$TMP/$1.one" "$PG/$DB" >/dev/null 2>&1)
  awk '{ print $3 / 1000 }' "$TMP"/pgbench_log.* | sort -n | awk '{ a[NR] = $1 } END {
    p50 = a[int(NR * 0.5 + 0.5)]; p99 = a[int(NR * 0.99 + 0.5)];
    printf "{\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"runs\": %d}", p50, p99, NR }'
}
first=$(timed first); later=$(timed later); reason=$(timed reason); reference=$(timed reference)
echo "first page:  $first"
echo "page at pair $pos: $later"
echo "first page of name_address: $reason"
echo "reference (51 customers by id): $reference"

# What the triggers cost a write: 20 INSERTs of 5 000 customers, 1 in 10 a duplicate by
# email of an existing one, with the duplicate triggers on, then the same with them off.
batches() {
  local tag=$1 t0
  t0=$(now)
  for b in $(seq 1 20); do
    q -c "INSERT INTO customers (id, kind, name, email, phone)
          SELECT uuid_v7(), 'individual', 'Bench $tag ' || i,
                 CASE WHEN i % 10 = 0 THEN 'USER' || (i * 7 + $b) || '+$tag@example.com'
                      ELSE 'new-$tag-$b-' || i || '@example.com' END,
                 '+47' || ($b * 100000 + i)::text || '$( [ "$tag" = on ] && echo 1 || echo 2 )'
          FROM generate_series(1, 5000) i"
  done
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}
on=$(batches on)
q -c "ALTER TABLE customers DISABLE TRIGGER customers_duplicates_inserted"
off=$(batches off)
q -c "ALTER TABLE customers ENABLE TRIGGER customers_duplicates_inserted"
echo "100 000 customers in 20 INSERTs of 5 000: ${on} s with the duplicate triggers, ${off} s without"

# The commit, marked -dirty when what was measured (migrations, the list's SQL) differs from it.
commit=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- migrations src/duplicates/list.sql || commit="$commit-dirty"
mkdir -p "$OUT"
cat > "$OUT/duplicates.json" <<JSON
{
  "commit": "$commit",
  "customers": $customers,
  "planted_pairs": $truth,
  "listed_pairs": $found,
  "precision": $precision,
  "recall": $recall,
  "by_rule": $by_rule,
  "backfill_seconds": $backfill,
  "first_page": $first,
  "later_page": $later,
  "later_page_position": $pos,
  "reason_first_page": $reason,
  "reference_customers_by_id": $reference,
  "insert_100k_in_5k_batches_seconds": {"with_triggers": $on, "without": $off},
  "machine": "2 cores shared with other builders; figures are of one run"
}
JSON
echo "written: $OUT/duplicates.json"
