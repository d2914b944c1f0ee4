#!/usr/bin/env bash
# Duplicate finding at scale: seeds N customers (default 100 000; `bench/duplicates.sh
# 1000000` for the million) of which 2 % have a planted duplicate, one rule each in turn
# (email with dots/+tag/case, the same phone, a similar name at the same address, an
# external id in another system's attribute), then runs the list's own SQL
# (src/duplicates/list.sql) and reports precision and recall against the planted pairs,
# and the time of the first page and of the whole list.
#
# Needs psql and PostgreSQL at BENCH_PG (default postgres://postgres@127.0.0.1:5432). It
# uses its own database, rapport_bench_dupes, dropped and made again each run.
set -euo pipefail
N=${1:-100000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=rapport_bench_dupes
ROOT=$(cd "$(dirname "$0")/.." && pwd)
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
for m in "$ROOT"/migrations/*/; do
  psql "$PG/$DB" -q -v ON_ERROR_STOP=1 -f "$m/up.sql" >/dev/null
done
q() { psql "$PG/$DB" -qAt -v ON_ERROR_STOP=1 "$@"; }

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
truth=$(q -c "SELECT count(*) FROM bench_truth")
echo "planted pairs: $truth"

SQL_TEXT=$(grep -v '^--' "$ROOT/src/duplicates/list.sql")
PREPARE="PREPARE dupes(uuid, text, bigint, uuid, uuid, bigint, float8, int[], bigint) AS $SQL_TEXT;"
ARGS="NULL, NULL, NULL, NULL, NULL, %s, 0.5, '{95,90,80,70}', 20"
# The first page as the API asks for it (51 rows: 50 and one to know more follow), then the
# whole list into a table, each timed by psql.
times=$(q <<SQL | grep '^Time:' | sed 's/^Time: //'
SET jit = off;  -- as the service's sessions run
$PREPARE
\timing on
\o /dev/null
EXECUTE dupes($(printf "$ARGS" 51));
\o
CREATE TABLE listed AS EXECUTE dupes($(printf "$ARGS" 100000000));
SQL
)
first=$(echo "$times" | sed -n 1p)
whole=$(echo "$times" | sed -n 2p)
read -r found hits < <(q -F ' ' -c "SELECT (SELECT count(*) FROM listed),
  (SELECT count(*) FROM listed l JOIN bench_truth t ON t.a = l.a_id AND t.b = l.b_id)")
echo "first page (50 pairs): $first"
echo "whole list: $whole"
echo "listed pairs: $found, of them planted: $hits"
awk -v f="$found" -v h="$hits" -v t="$truth" 'BEGIN {
  printf "precision: %.4f\nrecall:    %.4f\n", (f ? h / f : 0), (t ? h / t : 0) }'
q -c "SELECT t.rule, count(l.a_id) AS found, count(*) AS planted FROM bench_truth t
      LEFT JOIN listed l ON t.a = l.a_id AND t.b = l.b_id GROUP BY 1 ORDER BY 1" \
  | sed 's/^/recall by rule (rule|found|planted): /'
