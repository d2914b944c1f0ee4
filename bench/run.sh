#!/usr/bin/env bash
# Rapport's benchmark: generates a million customers, then measures the API beside PostgreSQL's
# own limit in the same run (reads beside `pgbench -S -M prepared`, writes beside pgbench's
# TPC-B-like transaction, both at the same concurrency), sweeps every list filter with every
# sort, records the query plans the API's list queries get, then runs the survey stage
# (bench/surveys.sh). Every scenario reports the service's peak RSS during it. Results:
# bench/results/latest.json (with the commit it ran on), bench/results/plans.txt and
# bench/results/survey_plans.txt.
#
#   bench/run.sh [customers=1000000] [seconds-per-scenario=15]
#
# BENCH_SEED_ONLY=1 stops after seeding; BENCH_SKIP_SEED=1 measures the database seeded before.
# BENCH_PARTIAL=1 measures only BENCH_SCENARIOS (default: all) and the sweep of BENCH_FILTERS
# (space-separated; default: all), beside the same references, into bench/results/partial.json:
# the loyalty passes, plans and survey stage are left out (the database stays as it was for a
# full run, but for what the create and purchase scenarios add).
# INTERACTIONS and PURCHASES set how many of each the seed gives every customer (10 and 20:
# a 30 GB database at a million customers; 2 and 4 keep it near 8 GB).
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

# The tests' streaming replica (tests/support/replica.sh), when left running, replays every
# WAL record the seed and the scenarios write: a second PostgreSQL busy beside the one
# measured. Stopped here; the tests that need it start it again.
tests/support/replica.sh stop 2>/dev/null && say "stopped the tests' replica" || true

COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations || echo -dirty)
# shellcheck source=bench/seed_database.sh
source bench/seed_database.sh
SEED=$(seed_database "$DB" "$CUSTOMERS" "${INTERACTIONS:-10}" "${PURCHASES:-20}" "$DATA")
say "seed: $SEED"
[ -z "${BENCH_SEED_ONLY:-}" ] || exit 0

serve() {
    DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn \
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
# The service's peak RSS since the last reset, in MiB; a reset starts each scenario afresh.
reset_peak() { echo 5 > "/proc/$SERVER/clear_refs" 2>/dev/null || true; }
peak_rss() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
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
say "pgbench TPC-B-like (the reference of writes)"
# A checkpoint first: right after pgbench's own load the reference read 2 145 tps in one run
# and 2 861-3 672 in the same session's later runs (2026-12-06).
psql_admin -c "CHECKPOINT"
TPCB=$(pgbench -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" "$PG/rapport_pgbench" 2>/dev/null)
TPCB_TPS=$(echo "$TPCB" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
say "pgbench TPC-B-like: $TPCB_TPS tps"

# One scenario of the load tool, as a JSON line with the service's peak RSS added.
load() {
    local scenario=$1 seconds=$2
    shift 2
    reset_peak
    local line
    line=$(./bench/target/release/load --base "http://127.0.0.1:$PORT" --token "$TOKEN" \
        --scenario "$scenario" --data "$DATA" --concurrency "$CONCURRENCY" --duration "$seconds" "$@")
    echo "${line%\}}, \"peak_rss_mib\": $(peak_rss)}"
}

RESULTS=()
read -ra SCENARIOS <<< "${BENCH_SCENARIOS:-get list search search_common timeline complaints create purchase}"
for scenario in "${SCENARIOS[@]}"; do
    say "load: $scenario ($CONCURRENCY connections, ${DURATION}s)"
    line=$(load "$scenario" "$DURATION")
    say "$line"
    RESULTS+=("$line")
done

# The same read by `wrk` (a C client as light per request as pgbench's), when installed: how
# much of the read's gap to `pgbench -S` is the load tool's own cost.
if command -v wrk >/dev/null; then
    say "wrk: get ($CONCURRENCY connections, ${DURATION}s)"
    reset_peak
    WRK=$(IDS="$DATA/customer_ids.txt" TOKEN="$TOKEN" wrk -t2 -c"$CONCURRENCY" -d"${DURATION}s" \
        --latency -s bench/wrk_ids.lua "http://127.0.0.1:$PORT")
    # Latencies in ms, whatever unit wrk prints them in.
    ms() { echo "$WRK" | awk -v p="$1" '$1 == p {v = $2; u = v; sub(/[0-9.]+/, "", u);
        sub(/[a-z]+$/, "", v); f = (u == "us") ? 0.001 : (u == "s") ? 1000 : 1; printf "%.2f", v * f}'; }
    line="{\"scenario\": \"get_wrk\", \"rps\": $(echo "$WRK" | awk '/^Requests\/sec/ {print $2}'),"
    line="$line \"p50_ms\": $(ms 50%), \"p99_ms\": $(ms 99%),"
    line="$line \"errors\": $(echo "$WRK" | awk '/Non-2xx/ {n = $NF} END {print n + 0}'), \"peak_rss_mib\": $(peak_rss)}"
    say "$line"
    RESULTS+=("$line")
fi

# Every list filter in every sort the API documents, a few seconds each: its p99, or the 400
# that refuses a sort the filter has no index path for.
MANAGER=$(psql "$PG/$DB" -qAtX -c "SELECT id FROM users WHERE email = 'manager7@rapport.example'")
FILTERS=(
    "" "kind=organization" "kind=individual" "lifecycle_stage=stable"
    "lifecycle_stage=dissolution,churned" "relationship_level=partnership" "tags=vip"
    "tags=vip,wholesale" "account_manager_id=$MANAGER" "account_manager_id=none"
    "region_type=rural" "source=fair" "prospect_grade=ideal" "consent_email=true"
    "consent_sms=false" "has_email=false" "has_phone=false" "created_after=2026-10-01T00:00:00Z"
    "created_before=2024-01-01T00:00:00Z" "updated_after=2026-11-01T00:00:00Z"
    "updated_before=2024-01-01T00:00:00Z" "attributes.plan=gold" "churn_score_min=70" "latest_nps_max=6"
    "deleted=only" "q=Lovlace" "q=mary+smith"
    "lifecycle_stage=stable&tags=newsletter"
)
[ -z "${BENCH_FILTERS:-}" ] || read -ra FILTERS <<< "$BENCH_FILTERS"
SWEEP=()
for filter in "${FILTERS[@]}"; do
    for sort in default created_at -created_at -updated_at updated_at name -name; do
        query="${filter:+$filter&}limit=50"
        [ "$sort" = default ] || query="$query&sort=$sort"
        status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$PORT/v1/customers?$query")
        if [ "$status" = 200 ]; then
            line=$(load path 2 --path "/v1/customers?$query")
            SWEEP+=("{\"query\": \"$query\", \"result\": $line}")
        else
            SWEEP+=("{\"query\": \"$query\", \"status\": $status}")
        fi
    done
done
say "list sweep: ${#SWEEP[@]} filter and sort pairs"

# The loyalty evaluation pass over every member, on demand (what the background job runs).
# The first pass gives every member the tier their points reach and expires what lapsed
# since the seed; the second is the steady state.
RESULT_FILE=$OUT/latest.json PLANS_FILE=$OUT/plans.txt EVALUATIONS=()
if [ -n "${BENCH_PARTIAL:-}" ]; then
    RESULT_FILE=$OUT/partial.json PLANS_FILE=/dev/null
else
    ADMIN=$(RAPPORT_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 DATABASE_URL="$PG/$DB" \
        "$RAPPORT" token --role admin --ttl 2h 2>/dev/null)
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
    serve
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
    # Each list request's plan from its own slice of the log.
    : > /tmp/rapport_bench_lists.txt
    for query in "${LISTS[@]}"; do
        start=$(stat -c %s "$PGLOG")
        curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/customers?$query"
        sleep 0.2
        tail -c +"$((start + 1))" "$PGLOG" > /tmp/rapport_bench_one.log
        python3 bench/plans.py --list /tmp/rapport_bench_one.log "$DB" "$query" >> /tmp/rapport_bench_lists.txt
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
    cat /tmp/rapport_bench_lists.txt /tmp/rapport_bench_slowest.txt > "$OUT/plans.txt"
    say "plans written to $OUT/plans.txt"
fi
stop

EVALS=$(printf '%s\n' "${EVALUATIONS[@]}")
SWEEPS=$(printf '%s\n' "${SWEEP[@]}")
python3 - "$SEED" "$PGBENCH_TPS" "$PGBENCH_PCT" "$PLANS_FILE" "$EVALS" "$TPCB_TPS" "$COMMIT" \
    "$CONCURRENCY" "$SWEEPS" "${RESULTS[@]}" <<'PY' | tee "$RESULT_FILE"
import json, sys
seed = json.loads(sys.argv[1])
tps = float(sys.argv[2]); p50, p99 = map(float, sys.argv[3].split())
plans = open(sys.argv[4]).read()
evaluations = [json.loads(line) for line in sys.argv[5].splitlines() if line]
tpcb = float(sys.argv[6])
sweep = [json.loads(line) for line in sys.argv[9].splitlines()]
runs = [json.loads(line) for line in sys.argv[10:]]
for run in runs:
    if run["scenario"] in ("create", "purchase"):
        run["ratio_to_pgbench_tpcb"] = round(run["rps"] / tpcb, 3)
    else:
        run["ratio_to_pgbench_select"] = round(run["rps"] / tps, 3)
served = [s["result"]["p99_ms"] for s in sweep if "result" in s]
print(json.dumps({"commit": sys.argv[7], "connections": int(sys.argv[8]), "seed": seed,
                  "pgbench_select_only": {"tps": tps, "p50_ms": p50, "p99_ms": p99},
                  "pgbench_tpcb_like": {"tps": tpcb},
                  "api": runs, "loyalty_evaluation": evaluations,
                  "list_sweep": {"served": len(served), "refused": len(sweep) - len(served),
                                 "worst_p99_ms": max(served, default=0),
                                 "over_20_ms": [s["query"] for s in sweep
                                                if "result" in s and s["result"]["p99_ms"] > 20],
                                 "pairs": sweep},
                  "plans_without_index": plans.count("NO INDEX")}, indent=2))
PY

[ -z "${BENCH_PARTIAL:-}" ] || exit 0

# The survey stage, against the same database and beside the same pgbench figure; it adds
# its figures to latest.json under "surveys".
say "survey stage (bench/surveys.sh)"
PGBENCH_TPS="$PGBENCH_TPS" PGBENCH_PCT="$PGBENCH_PCT" BENCH_SKIP_BUILD=1 BENCH_DB="$DB" BENCH_PORT="$PORT" \
    bench/surveys.sh "$DURATION" >/dev/null
