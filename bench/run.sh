#!/usr/bin/env bash
# Rapport's benchmark: generates a million customers, then measures the API beside PostgreSQL's
# own limit (pgbench -S -M prepared) in the same run, and records the query plans the API's
# list queries get, then runs the survey stage (bench/surveys.sh). Results:
# bench/results/latest.json, bench/results/plans.txt and bench/results/survey_plans.txt.
#
#   bench/run.sh [customers=1000000] [seconds-per-scenario=15]
#
# Needs PostgreSQL as for the tests (BENCH_PG, default postgres://postgres@127.0.0.1:5432).
# The service is built into $CARGO_TARGET_DIR (default target/), unless BENCH_SKIP_BUILD is set.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${1:-1000000}
DURATION=${2:-15}
CONCURRENCY=${CONCURRENCY:-16}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_DB:-rapport_bench}
PORT=${BENCH_PORT:-18080}
DATA=bench/data
OUT=bench/results
PGLOG=${BENCH_PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}
RAPPORT=${CARGO_TARGET_DIR:-target}/release/rapport
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
psql_admin() { psql "$PG/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
    (cd bench && CARGO_TARGET_DIR=target cargo build --release -q)
fi

say "database $DB with $CUSTOMERS customers"
psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate
SEED=$(./bench/target/release/seed --database-url "$PG/$DB" --customers "$CUSTOMERS" --out "$DATA")
say "seed: $SEED"

serve() {
    DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_LOG=warn \
        RAPPORT_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 \
        RAPPORT_DB_POOL_SIZE=16 "$RAPPORT" serve &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
        sleep 0.1
    done
    echo "rapport did not start" >&2
    exit 1
}
stop() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap stop EXIT

serve
TOKEN=$(RAPPORT_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 DATABASE_URL="$PG/$DB" \
    "$RAPPORT" token --role manager --ttl 2h 2>/dev/null)

say "pgbench -S -M prepared (scale 10: a million pgbench_accounts rows)"
psql_admin -c "DROP DATABASE IF EXISTS rapport_pgbench WITH (FORCE)" -c "CREATE DATABASE rapport_pgbench"
pgbench -q -i -s 10 "$PG/rapport_pgbench" >/dev/null 2>&1
rm -f /tmp/rapport_pgbench_log*
PGBENCH=$(pgbench -S -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" -l --log-prefix=/tmp/rapport_pgbench_log \
    "$PG/rapport_pgbench" 2>/dev/null)
PGBENCH_TPS=$(echo "$PGBENCH" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
PGBENCH_PCT=$(cat /tmp/rapport_pgbench_log* | awk '{print $3}' | sort -n | awk '
    {a[NR]=$1} END {printf "%.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
say "pgbench: $PGBENCH_TPS tps, p50/p99 ms: $PGBENCH_PCT"

RESULTS=()
for scenario in get list search search_common timeline complaints purchase; do
    say "load: $scenario ($CONCURRENCY connections, ${DURATION}s)"
    line=$(./bench/target/release/load --base "http://127.0.0.1:$PORT" --token "$TOKEN" \
        --scenario "$scenario" --data "$DATA" --concurrency "$CONCURRENCY" --duration "$DURATION")
    say "$line"
    RESULTS+=("$line")
done

# The loyalty evaluation pass over every member, on demand (what the background job runs).
# The first pass gives every member the tier their points reach and expires what lapsed
# since the seed; the second is the steady state.
ADMIN=$(RAPPORT_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 DATABASE_URL="$PG/$DB" \
    "$RAPPORT" token --role admin --ttl 2h 2>/dev/null)
EVALUATIONS=()
for pass in 1 2; do
    say "loyalty evaluation pass $pass"
    body=$(curl -fs -X POST -H "Authorization: Bearer $ADMIN" -w '\n%{time_total}' \
        "http://127.0.0.1:$PORT/v1/loyalty/evaluate")
    seconds=$(echo "$body" | tail -1)
    report=$(echo "$body" | head -1)
    say "pass $pass: ${seconds}s $report"
    EVALUATIONS+=("{\"pass\": $pass, \"seconds\": $seconds, \"report\": $report}")
done
stop

say "query plans of every filter and sort (auto_explain)"
psql_admin -c "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 0" \
    -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on" \
    -c "ALTER DATABASE $DB SET auto_explain.log_buffers = on"
LOG_START=$(stat -c %s "$PGLOG")
serve
MANAGER=$(psql "$PG/$DB" -qAtX -c "SELECT id FROM users WHERE email = 'manager7@rapport.example'")
LISTS=(
    "limit=50"
    "sort=created_at&limit=50" "sort=updated_at&limit=50" "sort=-updated_at&limit=50"
    "sort=name&limit=50" "sort=-name&limit=50"
    "kind=organization" "kind=individual" "lifecycle_stage=stable" "lifecycle_stage=dissolution,churned"
    "relationship_level=partnership" "tags=vip" "tags=vip,wholesale" "account_manager_id=$MANAGER"
    "account_manager_id=none" "region_type=rural" "source=fair" "prospect_grade=ideal"
    "consent_email=true" "consent_sms=true" "consent_sms=false" "has_email=false" "has_email=true"
    "has_phone=false" "created_after=2026-10-01T00:00:00Z" "created_before=2024-01-01T00:00:00Z"
    "updated_after=2026-11-01T00:00:00Z" "updated_before=2024-01-01T00:00:00Z"
    "attributes.plan=gold" "attributes.seats=7" "q=Lovlace" "q=mary+smith" "q=Hopper&sort=name"
    "q=4930123" "q=smith.12" "deleted=only"
    "lifecycle_stage=stable&tags=newsletter&sort=-updated_at"
)
for query in "${LISTS[@]}"; do
    curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/customers?$query"
done
# The interaction lists: the slowest statement of each request is its plan.
CUSTOMER=$(head -1 "$DATA/customer_ids.txt")
PATHS=(
    "customers/$CUSTOMER/timeline?limit=20" "customers/$CUSTOMER/timeline?limit=20&types=interaction"
    "customers/$CUSTOMER/interactions" "interactions?limit=50" "interactions?kind=complaint"
    "interactions?channel=visit&direction=outbound" "interactions?staff_id=$MANAGER"
    "interactions?q=damaged+parcel" "interactions?occurred_after=2026-11-01T00:00:00Z"
    "complaints?sort=oldest" "complaints?sort=severity" "complaints?status=resolved&severity=critical"
    "complaints/stats" "follow-ups?state=overdue" "follow-ups?assignee=$MANAGER&state=due"
)
: > /tmp/rapport_bench_slowest.txt
for path in "${PATHS[@]}"; do
    start=$(stat -c %s "$PGLOG")
    curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/$path"
    sleep 0.2
    tail -c +"$((start + 1))" "$PGLOG" > /tmp/rapport_bench_one.log
    python3 bench/plans.py --slowest /tmp/rapport_bench_one.log "$DB" "/v1/$path" >> /tmp/rapport_bench_slowest.txt
done
stop
psql_admin -c "ALTER DATABASE $DB RESET ALL"
tail -c +"$((LOG_START + 1))" "$PGLOG" > /tmp/rapport_bench_plans.log
python3 bench/plans.py /tmp/rapport_bench_plans.log "$DB" "${LISTS[@]}" > "$OUT/plans.txt"
cat /tmp/rapport_bench_slowest.txt >> "$OUT/plans.txt"
say "plans written to $OUT/plans.txt"

EVALS=$(printf '%s\n' "${EVALUATIONS[@]}")
python3 - "$SEED" "$PGBENCH_TPS" "$PGBENCH_PCT" "$OUT/plans.txt" "$EVALS" "${RESULTS[@]}" <<'PY' | tee "$OUT/latest.json"
import json, sys
seed = json.loads(sys.argv[1])
tps = float(sys.argv[2]); p50, p99 = map(float, sys.argv[3].split())
plans = open(sys.argv[4]).read()
evaluations = [json.loads(line) for line in sys.argv[5].splitlines()]
runs = [json.loads(line) for line in sys.argv[6:]]
for run in runs:
    run["ratio_to_pgbench"] = round(run["rps"] / tps, 3)
print(json.dumps({"seed": seed, "pgbench_select_only": {"tps": tps, "p50_ms": p50, "p99_ms": p99},
                  "api": runs, "loyalty_evaluation": evaluations,
                  "plans_without_index": plans.count("NO INDEX")}, indent=2))
PY

# The survey stage, against the same database and beside the same pgbench figure; it adds
# its figures to latest.json under "surveys".
say "survey stage (bench/surveys.sh)"
PGBENCH_TPS="$PGBENCH_TPS" PGBENCH_PCT="$PGBENCH_PCT" BENCH_SKIP_BUILD=1 BENCH_DB="$DB" BENCH_PORT="$PORT" \
    bench/surveys.sh "$DURATION" >/dev/null
