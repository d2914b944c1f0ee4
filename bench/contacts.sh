#!/usr/bin/env bash
# Contacts at scale (issue 21): seeds N customers (default 1 000 000) with 0.3 N contact links
# (300 000 at a million) set-wise in SQL: organizations of 1 to 30 people, a tenth of the
# links past (ended), a decision maker at a third of the organizations, and an opportunity
# for each organization naming one to three of its people. Then ANALYZE, and measures beside
# `pgbench -S -M prepared`, in the same run, with the same connections and duration:
#
#   GET /v1/customers/{org}/contacts                       a random organization's people
#   GET /v1/customers/{person}/organizations                a random linked person's links
#   GET /v1/opportunities?has_decision_maker=false&limit=50
#   GET /v1/opportunities?limit=50                           the same page, no filter
#   GET /v1/customers?q=<surname>&include=organizations      a random linked person's surname
#
#   bench/contacts.sh [customers=1000000] [seconds-per-scenario=15]
#
# Prints p50/p99/req/s and the ratio to pgbench of each, and writes
# bench/results/contacts.json (with the commit). Its own database, rapport_bench_contacts,
# dropped and made again each run, migrated by the service (`rapport migrate`) as
# bench/run.sh does. Needs psql and pgbench at BENCH_PG (default
# postgres://postgres@127.0.0.1:5432); the service and the load tool are built in release
# unless BENCH_SKIP_BUILD is set (RAPPORT_BIN names another build of the service).
# BENCH_SKIP_SEED=1 measures the database seeded by an earlier run.
set -euo pipefail
# Paths hold `&`, which bash 5.2 would read as "the match" in a ${var//…} replacement.
shopt -u patsub_replacement 2>/dev/null || true
cd "$(dirname "$0")/.."

N=${1:-1000000}
DURATION=${2:-15}
CONCURRENCY=${CONCURRENCY:-16}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=rapport_bench_contacts
PORT=${BENCH_PORT:-18081}
DATA=bench/data/contacts
OUT=bench/results
RAPPORT=${RAPPORT_BIN:-${CARGO_TARGET_DIR:-target}/release/rapport}
LOAD=./bench/target/release/load
SECRET=bench-secret-bench-secret-bench-secret-0123
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
q() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
    (cd bench && CARGO_TARGET_DIR=target cargo build --release -q)
fi
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations || echo -dirty)

SEED_START=$(date +%s)
if [ -z "${BENCH_SKIP_SEED:-}" ]; then
say "database $DB: $N customers, $((N * 3 / 10)) links"
psql "$PG/postgres" -qX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate
q <<SQL
SET synchronous_commit = off;
INSERT INTO users (id, email, name, role)
VALUES ('00000000-0000-7000-8000-000000000001', 'seller@rapport.example', 'Sam Seller', 'agent');
-- Organizations first: as many as 30 % of the customers make links at 15.5 people each.
-- A link's organization is picked by the link's number, so organization o has
-- 1 + (o * 7) % 30 people: 1 to 30, 15.5 on average.
CREATE TEMP TABLE plan AS
SELECT o, 1 + (o * 7) % 30 AS people,
       sum(1 + (o * 7) % 30) OVER (ORDER BY o) - (1 + (o * 7) % 30) AS first_link
FROM generate_series(1, greatest(1, ($N * 3 / 10) * 2 / 31)) o;
-- Surnames: a pool of one per 500 customers, so a surname is held by about 500 people.
INSERT INTO customers (id, kind, name, email, lifecycle_stage, created_at, updated_at)
SELECT uuid_v7(), 'organization', 'Firm ' || o || ' ' || (ARRAY['GmbH','Ltd','SA','BV'])[1 + o % 4],
       'office' || o || '@firm.example', 'stable', now(), now()
FROM plan;
INSERT INTO customers (id, kind, name, email, lifecycle_stage, created_at, updated_at)
SELECT uuid_v7(), 'individual',
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Ken','Frances'])[1 + i % 8]
         || ' ' || 'Sur' || to_hex(1000 + (i * 7919) % greatest(1, $N / 500)),
       CASE WHEN i % 5 <> 0 THEN 'person' || i || '@mail.example' END,
       'prospect', now(), now()
FROM generate_series(1, $N - (SELECT count(*) FROM plan)) i;
CREATE TEMP TABLE orgs AS
SELECT row_number() OVER (ORDER BY id) AS o, id FROM customers WHERE kind = 'organization';
CREATE TEMP TABLE people AS
SELECT row_number() OVER (ORDER BY id) AS p, id FROM customers WHERE kind = 'individual';
CREATE UNIQUE INDEX ON orgs (o);
CREATE UNIQUE INDEX ON people (p);
-- The links: the k-th person of organization o is person first_link + k (people of one
-- organization are neighbours; a person may be at two organizations when the links wrap).
INSERT INTO contacts (organization_id, person_id, title, buying_roles, is_primary, started_at,
                      ended_at)
SELECT org.id, person.id,
       (ARRAY['Buyer','CTO','CFO','Engineer','Director'])[1 + k % 5],
       CASE WHEN k = 0 AND plan.o % 3 = 0 THEN ARRAY['purchaser','decision_maker']
            WHEN k % 4 = 1 THEN ARRAY['user']
            WHEN k % 4 = 2 THEN ARRAY['technical_gatekeeper']
            ELSE ARRAY['purchaser'] END,
       k = 0,
       now() - interval '400 days',
       CASE WHEN k > 0 AND (plan.first_link + k) % 10 = 0 THEN now() - interval '30 days' END
FROM plan
JOIN orgs org ON org.o = plan.o
CROSS JOIN LATERAL generate_series(0, plan.people - 1) k
JOIN people person ON person.p = 1 + (plan.first_link + k) % (SELECT count(*) FROM people)
ON CONFLICT DO NOTHING;
-- An open opportunity per organization, naming one to three of its people (the first, who
-- decides at a third of them, only at every other one).
INSERT INTO opportunities (customer_id, title, amount, currency, stage, owner_id,
                           expected_close_date, contact_ids)
SELECT org.id, 'Deal ' || plan.o, 10000 + plan.o % 100000, 'EUR', 'proposal',
       '00000000-0000-7000-8000-000000000001', current_date + (plan.o % 180),
       ARRAY(SELECT c.person_id FROM contacts c WHERE c.organization_id = org.id
             ORDER BY c.id OFFSET CASE WHEN plan.o % 2 = 0 THEN 0 ELSE 1 END
             LIMIT 1 + plan.o % 3)
FROM plan JOIN orgs org ON org.o = plan.o;
-- As autovacuum would have by then: statistics, and the visibility map that lets the
-- decision-maker probe read its index only.
VACUUM (ANALYZE);
SQL
fi
SEED_SECONDS=$(( $(date +%s) - SEED_START ))
read -r CUSTOMERS LINKS PAST DECIDING OPPORTUNITIES UNKNOWN < <(q -F ' ' -c "
  SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM contacts),
         (SELECT count(*) FROM contacts WHERE ended_at IS NOT NULL),
         (SELECT count(DISTINCT organization_id) FROM contacts
          WHERE ended_at IS NULL AND 'decision_maker' = ANY (buying_roles)),
         (SELECT count(*) FROM opportunities),
         (SELECT count(*) FROM opportunities o WHERE NOT EXISTS (SELECT 1 FROM contacts c
            WHERE c.organization_id = o.customer_id AND c.person_id = ANY (o.contact_ids)
              AND c.ended_at IS NULL AND 'decision_maker' = ANY (c.buying_roles)))")
say "seeded in ${SEED_SECONDS}s: $CUSTOMERS customers, $LINKS links ($PAST past), $DECIDING organizations with a decision maker, $OPPORTUNITIES opportunities ($UNKNOWN without one)"
q -c "SELECT organization_id FROM contacts GROUP BY 1 ORDER BY random() LIMIT 2000" > "$DATA/organizations.txt"
q -c "SELECT person_id FROM contacts WHERE ended_at IS NULL ORDER BY random() LIMIT 2000" > "$DATA/people.txt"
q -c "SELECT DISTINCT split_part(p.name, ' ', 2) FROM contacts c JOIN customers p ON p.id = c.person_id
      WHERE c.ended_at IS NULL ORDER BY 1 LIMIT 2000" > "$DATA/surnames.txt"

DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn \
    RAPPORT_JWT_SECRET=$SECRET RAPPORT_DB_POOL_SIZE=16 "$RAPPORT" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role manager --ttl 2h 2>/dev/null)

say "pgbench -S -M prepared (scale 10), $CONCURRENCY connections, ${DURATION}s"
psql "$PG/postgres" -qX -c "DROP DATABASE IF EXISTS rapport_pgbench_contacts WITH (FORCE)" \
    -c "CREATE DATABASE rapport_pgbench_contacts"
pgbench -q -i -s 10 "$PG/rapport_pgbench_contacts" >/dev/null 2>&1
rm -f /tmp/rapport_pgbench_contacts_log*
PGBENCH=$(pgbench -S -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" -l \
    --log-prefix=/tmp/rapport_pgbench_contacts_log "$PG/rapport_pgbench_contacts" 2>/dev/null)
PGBENCH_TPS=$(echo "$PGBENCH" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
PGBENCH_PCT=$(cat /tmp/rapport_pgbench_contacts_log* | awk '{print $3}' | sort -n | awk '
    {a[NR]=$1} END {printf "%.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
say "pgbench: $PGBENCH_TPS tps, p50/p99 ms: $PGBENCH_PCT"

scenario() {
    local name=$1 path=$2 ids=${3:-}
    local line
    line=$("$LOAD" --base "http://127.0.0.1:$PORT" --token "$TOKEN" --scenario path \
        --path "$path" ${ids:+--ids "$ids"} --concurrency "$CONCURRENCY" --duration "$DURATION")
    line="${line/\"scenario\": \"path\"/\"scenario\": \"$name\", \"path\": \"$path\"}"
    say "$line"
    echo "$line"
}
RESULTS=()
RESULTS+=("$(scenario contacts_of_organization '/v1/customers/{id}/contacts' "$DATA/organizations.txt")")
RESULTS+=("$(scenario organizations_of_person '/v1/customers/{id}/organizations' "$DATA/people.txt")")
RESULTS+=("$(scenario no_decision_maker '/v1/opportunities?has_decision_maker=false&limit=50')")
# The same page without the filter: what a page of 50 opportunities costs by itself.
RESULTS+=("$(scenario opportunities_page '/v1/opportunities?limit=50')")
RESULTS+=("$(scenario search_with_organizations '/v1/customers?q={id}&include=organizations&limit=20' "$DATA/surnames.txt")")

python3 - "$COMMIT" "$CONCURRENCY" "$DURATION" "$PGBENCH_TPS" "$PGBENCH_PCT" \
    "$CUSTOMERS $LINKS $PAST $DECIDING $OPPORTUNITIES $UNKNOWN $SEED_SECONDS" \
    "${RESULTS[@]}" <<'PY' | tee "$OUT/contacts.json"
import json, sys
commit, connections, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tps = float(sys.argv[4]); p50, p99 = map(float, sys.argv[5].split())
customers, links, past, deciding, opportunities, unknown, seed_s = map(int, sys.argv[6].split())
runs = [json.loads(line) for line in sys.argv[7:]]
for run in runs:
    run["ratio_to_pgbench_select"] = round(run["rps"] / tps, 3)
print(json.dumps({
    "commit": commit, "connections": connections, "seconds_per_scenario": seconds,
    "data": {"customers": customers, "links": links, "past_links": past,
             "organizations_with_a_decision_maker": deciding, "opportunities": opportunities,
             "opportunities_without_a_decision_maker": unknown, "seed_seconds": seed_s},
    "pgbench_select_only": {"tps": tps, "p50_ms": p50, "p99_ms": p99},
    "api": runs}, indent=2))
PY
