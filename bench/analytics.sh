#!/usr/bin/env bash
# The analytics benchmark: every customer value analytics request (POST
# /v1/analytics/recompute, GET /v1/analytics/pareto, /v1/exports/pareto, /v1/analytics/segments,
# /v1/analytics/churn-risk, the customer list and record with their analytics, and GET
# /v1/analytics/forecast) on a million customers, in seconds, beside what PostgreSQL itself
# takes for the bare work in the same run (psql, \timing), with the query plans.
#
#   bench/analytics.sh [customers=1000000]
#
# 1. A fresh database rapport_analytics_bench, migrated by `rapport migrate`, filled set-wise
#    in SQL (bench/analytics/seed_*.sql, generate_series) with the tables' secondary indexes
#    dropped and the foreign-key triggers off, then the migrations' indexes rebuilt (two
#    sessions) and VACUUM (ANALYZE): N customers (1 % deleted), about 6 N purchases over two
#    years with Pareto-distributed counts and amounts, 2 N interactions (5 % complaints), 0.3 N
#    latest NPS/CSAT answers, 0.2 N loyalty members, 0.2 N opportunities of 300 staff users.
# 2. References in psql: the per-customer sum of a year of purchases (the floor under Pareto
#    and the computation), the same as profit, the ranking COPYed out, a million analytics
#    rows written into a copy of the table, a count of the live customers joined to their
#    satisfaction (the floor under segments), and each short read by hand.
# 3. The release service (RAPPORT_ANALYTICS_INTERVAL=7d: the job does not run by itself), an
#    admin token: the computation twice (the first writes every row, the second only what
#    changed), each with the longest-lived write transaction sampled meanwhile (what the
#    event feed waits for), then each read, the median of BENCH_RUNS (5; 3 for the Pareto
#    pages, 20 for the millisecond reads) after one unmeasured run; the export once, with the
#    service's RSS sampled every 0.1 s.
#    The Pareto page and segments are read as the computation kept them and, with
#    live=true, computed for the request, as every request was before they were kept.
# 4. Plans: auto_explain (ANALYZE, BUFFERS) on for the database, each request once, every
#    statement it ran listed and the slow ones' plans kept (bench/analytics/plans.py), beside
#    EXPLAIN (ANALYZE, BUFFERS) of the references: bench/results/analytics_plans.txt.
# 5. What would help, by hand (src/ untouched): the Pareto statement with the page taken
#    before the customers are joined (bench/analytics/pareto.sql, checked to give the same
#    rows), and the computation's read-only statement (COMPUTE, read from
#    src/analytics/store.rs) with the default work_mem and with 256MB.
# 6. Unless BENCH_SKIP_DISSOLUTION is set: move_to_dissolution switched on through PUT
#    /v1/analytics/settings, and one more computation, which moves the customers at risk.
#
# Figures: bench/results/analytics.json; a table of them is printed at the end. Builds the
# service into $CARGO_TARGET_DIR (default target/) unless BENCH_SKIP_BUILD is set. Drops and
# recreates only its own database (left behind for inspection; BENCH_REUSE_DB=1 measures an
# existing one again without seeding: the figures of the README come from fresh runs). Port
# BENCH_PORT (18083, refused if something answers there).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

CUSTOMERS=${1:-1000000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_ANALYTICS_DB:-rapport_analytics_bench}
PORT=${BENCH_PORT:-18083}
RUNS=${BENCH_RUNS:-5}
SLOW_RUNS=${BENCH_SLOW_RUNS:-3}
FAST_RUNS=${BENCH_FAST_RUNS:-20}
DATA=${BENCH_ANALYTICS_DATA:-/tmp/rapport-analytics-bench}
OUT=bench/results
RAPPORT=${CARGO_TARGET_DIR:-target}/release/rapport
SECRET=bench-secret-bench-secret-bench-secret-0123
PGLOG=${BENCH_PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}
BASE="http://127.0.0.1:$PORT"
API="$BASE/v1"
mkdir -p "$DATA" "$OUT"
rm -f "$DATA"/*.ndjson "$DATA"/*.body

say() { printf '==> %s\n' "$*" >&2; }
fail() { printf '\nANALYTICS BENCH FAILED: %s\n\n' "$*" >&2; exit 1; }
psql_admin() { psql "$PG/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_db() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { printf "%s", a[int((NR + 1) / 2)] }'; }
json_list() { local IFS=,; echo "[$*]"; }
STARTED=$(now)

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
fi
[ -r "$PGLOG" ] || fail "cannot read the PostgreSQL log ($PGLOG; set BENCH_PG_LOG) for the plans"
! curl -fs "$BASE/readyz" >/dev/null 2>&1 || fail "something already answers on port $PORT (BENCH_PORT)"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
SERVICE="$(git rev-parse --short HEAD)$([ -n "$(git status --porcelain -- src migrations)" ] && echo ' (with uncommitted changes)' || true)"
say "service at $SERVICE"
say "machine: $(nproc) cores, load average $LOAD_AT_START"

# ---- 1. the data set ---------------------------------------------------------------------
SEED_JSON='{}'
if [ -n "${BENCH_REUSE_DB:-}" ]; then
    say "reusing $DB (BENCH_REUSE_DB): no seed; analytics and their settings reset"
    psql_db -c "TRUNCATE customer_analytics" \
        -c "UPDATE analytics_settings SET move_to_dissolution = false, computed_at = NULL,
                   computed_with = NULL, computed_customers = NULL, computed_ms = NULL" \
        -c "VACUUM (ANALYZE) customer_analytics"
    CUSTOMERS=$(psql_db -c "SELECT count(*) FROM customers")
else
    say "database $DB: fresh, migrated"
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
    DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate

    TABLES="'customers', 'purchases', 'interactions', 'customer_satisfaction', 'loyalty_accounts', 'opportunities', 'users'"
    # The secondary indexes of the tables loaded (primary keys stay), largest table first.
    psql_db -c "SELECT i.indexname || E'\\t' || i.indexdef || ';'
                FROM pg_indexes i
                WHERE i.schemaname = 'public' AND i.tablename IN ($TABLES)
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
                ORDER BY array_position(ARRAY[$TABLES]::text[], i.tablename::text), i.indexname" \
        > "$DATA/indexes.txt"
    INDEXES=$(wc -l < "$DATA/indexes.txt")
    say "dropping the $INDEXES secondary indexes of the tables to load"
    cut -f1 "$DATA/indexes.txt" | sed 's/^/DROP INDEX /; s/$/;/' | psql_db -f -

    T0=$(psql_db -c "SELECT date_trunc('second', now())")
    SEED_STEPS=()
    for step in customers purchases interactions others; do
        say "seed: $step"
        t=$(now)
        psql_db -v customers="$CUSTOMERS" -v t0="$T0" \
            -c "SET session_replication_role = replica" -c "SET work_mem = '256MB'" \
            -f "bench/analytics/seed_$step.sql"
        SEED_STEPS+=("\"$step\": $(since "$t")")
        say "seed: $step in $(since "$t") s"
    done
    psql_db -c "DROP TABLE bench_c"

    say "rebuilding the $INDEXES indexes (two sessions)"
    t=$(now)
    for part in 0 1; do
        awk -F'\t' -v part=$part 'NR % 2 == part { print $2 }' "$DATA/indexes.txt" \
            | psql_db -c "SET maintenance_work_mem = '1GB'" -f - &
    done
    wait
    [ "$(psql_db -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ($TABLES)
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = indexname)")" = "$INDEXES" ] ||
        fail "the indexes were not all rebuilt"
    SEED_STEPS+=("\"indexes\": $(since "$t")")
    say "indexes in $(since "$t") s"
    t=$(now)
    psql_db -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
    SEED_STEPS+=("\"vacuum_analyze\": $(since "$t")")
    say "VACUUM (ANALYZE) in $(since "$t") s"
    SEED_JSON="{$(IFS=,; echo "${SEED_STEPS[*]}")}"
fi

DATASET=$(psql_db -c "
    SELECT json_build_object(
        'customers', (SELECT count(*) FROM customers),
        'customers_live', (SELECT count(*) FROM customers WHERE deleted_at IS NULL AND erased_at IS NULL),
        'lifecycle_stages', (SELECT json_object_agg(lifecycle_stage, n) FROM
            (SELECT lifecycle_stage, count(*) AS n FROM customers GROUP BY 1) s),
        'purchases', (SELECT count(*) FROM purchases),
        'purchases_eur_last_365_days', (SELECT count(*) FROM purchases
            WHERE currency = 'EUR' AND occurred_at > now() - interval '365 days'),
        'purchases_with_cost', (SELECT count(cost) FROM purchases),
        'purchases_refunded', (SELECT count(*) FROM purchases WHERE refunded > 0),
        'buyers', (SELECT count(DISTINCT customer_id) FROM purchases),
        'interactions', (SELECT count(*) FROM interactions),
        'complaints', (SELECT json_object_agg(status, n) FROM
            (SELECT status, count(*) AS n FROM interactions WHERE kind = 'complaint' GROUP BY 1) s),
        'customer_satisfaction', (SELECT count(*) FROM customer_satisfaction),
        'loyalty_accounts', (SELECT count(*) FROM loyalty_accounts),
        'opportunities', (SELECT json_object_agg(status, n) FROM
            (SELECT status, count(*) AS n FROM opportunities GROUP BY 1) s),
        'users', (SELECT count(*) FROM users),
        'sizes', (SELECT json_object_agg(t, pg_size_pretty(pg_total_relation_size(t::regclass)))
            FROM unnest(ARRAY['customers', 'purchases', 'interactions', 'opportunities']) t))")
say "data set: $DATASET"

# ---- 2. references -----------------------------------------------------------------------
# Seconds psql takes for $2 (\timing: the last statement of the session), $1 times.
pg_runs() {
    local runs=$1 sql=$2 out=()
    for _ in $(seq 1 "$runs"); do
        out+=("$(psql "$PG/$DB" -X -q -v ON_ERROR_STOP=1 -c '\timing on' -c "$sql" \
            | awk '/^Time: / { t = $2 } END { printf "%.4f", t / 1000 }')")
    done
    echo "${out[*]}"
}
# Records reference $1: $3 runs of $2 after one unmeasured run.
reference() {
    local name=$1 sql=$2 runs=$3 times
    pg_runs 1 "$sql" >/dev/null
    times=$(pg_runs "$runs" "$sql")
    jq -cn --arg name "$name" --arg sql "$(echo "$sql" | tr -s ' \n' ' ')" --arg times "$times" \
        '{name: $name, sql: $sql, runs_s: ($times | split(" ") | map(tonumber))}' >> "$DATA/references.ndjson"
    say "reference $name: $(echo "$times" | median) s (median of $runs)"
}

YEAR_SUM="SELECT customer_id, sum(amount - refunded) AS value FROM purchases
          WHERE currency = 'EUR' AND occurred_at > now() - interval '365 days' GROUP BY 1"
YEAR_PROFIT="SELECT customer_id, sum(amount - refunded - cost) AS value FROM purchases
             WHERE currency = 'EUR' AND occurred_at > now() - interval '365 days'
               AND cost IS NOT NULL GROUP BY 1"
SEGMENTS_FLOOR="SELECT count(*) FROM customers c LEFT JOIN customer_satisfaction s ON s.customer_id = c.id
                WHERE c.deleted_at IS NULL AND c.erased_at IS NULL"
YEAR=$(date -u +%Y)
FORECAST_FLOOR="SELECT currency, count(*), sum(amount) FROM opportunities
                WHERE deleted_at IS NULL
                  AND ((status = 'won' AND closed_at >= '$YEAR-01-01' AND closed_at < '$((YEAR + 1))-01-01')
                    OR (status = 'open' AND expected_close_date >= '$YEAR-01-01'
                        AND expected_close_date < '$((YEAR + 1))-01-01'))
                GROUP BY 1"
say "references (psql)"
# The sums are counted in the server, so that the time is PostgreSQL's, not psql's reading.
reference group_year "SELECT count(*), sum(value) FROM ($YEAR_SUM) t" "$SLOW_RUNS"
reference group_year_profit "SELECT count(*), sum(value) FROM ($YEAR_PROFIT) t" "$SLOW_RUNS"
reference segments_floor "$SEGMENTS_FLOOR" "$RUNS"
reference forecast_floor "$FORECAST_FLOOR" "$RUNS"
# The whole ranking out of the server, as psql reads it.
t=$(now)
COPY_BYTES=$(psql_db -c "COPY (SELECT customer_id, value FROM ($YEAR_SUM) t WHERE value > 0
                               ORDER BY value DESC, customer_id) TO STDOUT WITH (FORMAT csv)" | wc -c)
COPY_S=$(since "$t")
jq -cn --arg s "$COPY_S" --arg b "$COPY_BYTES" \
    '{name: "ranking_copy", sql: "COPY (SELECT customer_id, value FROM (<group_year>) t WHERE value > 0 ORDER BY value DESC, customer_id) TO STDOUT WITH (FORMAT csv)", runs_s: [($s | tonumber)], bytes: ($b | tonumber)}' \
    >> "$DATA/references.ndjson"
say "reference ranking_copy: $COPY_S s, $COPY_BYTES bytes"

# ---- 3. the service ----------------------------------------------------------------------
SERVER=
SAMPLER=
stop() {
    [ -n "$SAMPLER" ] && { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; }
    [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=; }
    return 0
}
cleanup() {
    stop
    psql_admin -c "ALTER DATABASE $DB RESET ALL" >/dev/null 2>&1 || true
}
trap cleanup EXIT
serve() {
    # The service's log (JSON) kept for what each computation spent keeping its rankings
    # and breakdown (kept_cost).
    DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off \
        RAPPORT_LOG=warn,rapport::analytics=info RAPPORT_LOG_FORMAT=json RAPPORT_JWT_SECRET=$SECRET \
        RAPPORT_ANALYTICS_INTERVAL=7d "$RAPPORT" serve >> "$DATA/service.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 600); do
        kill -0 "$SERVER" 2>/dev/null || fail "rapport exited at startup"
        curl -fs "$BASE/readyz" >/dev/null && return 0
        sleep 0.1
    done
    fail "rapport did not start"
}
# What the last computation spent keeping the Pareto rankings (read after its figures, in
# the same snapshot, and written) and the segment breakdown, in seconds, from the service's
# log: {"rankings_s": .., "segments_s": ..}, or null (a service that keeps none).
kept_cost() {
    python3 - "$DATA/service.log" <<'KEPT'
import json, re, sys
lines = [l for l in open(sys.argv[1], errors="replace") if "analytics kept" in l]
if not lines:
    print("null")
else:
    r = re.search(r'"rankings_ms":\s*(\d+)', lines[-1]); s = re.search(r'"segments_ms":\s*(\d+)', lines[-1])
    print(json.dumps({"rankings_s": int(r.group(1)) / 1000, "segments_s": int(s.group(1)) / 1000}))
KEPT
}
rm -f "$DATA/service.log"
serve
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role admin --ttl 4h 2>/dev/null)
IDLE_RSS=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status")

# One request: prints "seconds bytes" and leaves the body in $DATA/last.body; fails on an
# error status.
request() { # method path [curl args]
    local method=$1 path=$2 code t size
    shift 2
    read -r code t size < <(curl -sS -X "$method" -o "$DATA/last.body" \
        -w '%{http_code} %{time_total} %{size_download}\n' -H "Authorization: Bearer $TOKEN" "$@" "$API$path")
    [[ "$code" == 2* ]] || fail "$method $path answered $code: $(head -c 400 "$DATA/last.body")"
    echo "$t $size"
}
# While a computation runs: the longest any write transaction of the database held an xid,
# sampled every 0.1 s (what the event feed and webhooks wait for: an event is served once
# every transaction older than its own has ended). xid_watch starts, xid_watched prints s.
xid_watch() {
    ( max=0
      while :; do
          t=$(psql_db -c "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
                          FROM pg_stat_activity WHERE datname = current_database()
                            AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()" 2>/dev/null || echo 0)
          max=$(awk -v a="$max" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
          echo "$max" > "$DATA/xid_max"
          sleep 0.1
      done ) &
    XID_WATCH=$!
}
xid_watched() {
    kill "$XID_WATCH" 2>/dev/null; wait "$XID_WATCH" 2>/dev/null || true
    awk '{ printf "%.2f", $1 }' "$DATA/xid_max"
}
# Records endpoint $1: GET $2, $3 runs after one unmeasured run, beside reference $4.
endpoint() {
    local name=$1 path=$2 runs=$3 ref=${4:-} first times=() t size out
    out=$(request GET "$path")
    read -r first size <<< "$out"
    for _ in $(seq 1 "$runs"); do
        out=$(request GET "$path")
        read -r t size <<< "$out"
        times+=("$t")
    done
    jq -cn --arg name "$name" --arg req "GET /v1$path" --arg first "$first" --arg times "${times[*]}" \
        --arg size "$size" --arg ref "$ref" \
        '{name: $name, request: $req, first_s: ($first | tonumber),
          runs_s: ($times | split(" ") | map(tonumber)), bytes: ($size | tonumber), reference: $ref}' \
        >> "$DATA/endpoints.ndjson"
    say "$name: $(echo "${times[*]}" | median) s (median of $runs; first $first s), $size bytes"
}

say "recompute 1: every row written"
LAST_XID=$(psql_db -c "SELECT txid_current() % 4294967296")
xid_watch
OUT1=$(request POST /analytics/recompute -m 3600)
R1_XID=$(xid_watched)
read -r R1_S _ <<< "$OUT1"
R1_BODY=$(cat "$DATA/last.body")
R1_KEPT=$(kept_cost)
R1_ROWS=$(psql_db -c "SELECT count(*) FROM customer_analytics")
say "recompute 1: $R1_S s, $R1_BODY; $R1_ROWS rows; longest write transaction $R1_XID s; keeping: $R1_KEPT"
ANALYTICS=$(psql_db -c "
    SELECT json_build_object(
        'value_tiers', (SELECT json_object_agg(value_tier, n) FROM
            (SELECT value_tier, count(*) AS n FROM customer_analytics GROUP BY 1) s),
        'value_classes', (SELECT json_object_agg(value_class, n) FROM
            (SELECT value_class, count(*) AS n FROM customer_analytics GROUP BY 1) s),
        'at_risk', (SELECT count(*) FROM customer_analytics WHERE churn_score >= 50),
        'at_risk_movable', (SELECT count(*) FROM customer_analytics a JOIN customers c ON c.id = a.customer_id
            WHERE a.churn_score >= 50 AND c.lifecycle_stage IN ('acquaintance', 'exploration', 'stable', 'commitment')),
        'churn_reasons', (SELECT json_object_agg(r, n) FROM
            (SELECT r, count(*) AS n FROM customer_analytics, unnest(churn_reasons) r GROUP BY 1) s))")
say "analytics: $ANALYTICS"

# The churn list as the computation leaves the table: never analyzed (autovacuum is off on
# this machine; with it on, the table would be analyzed soon after a million inserts).
endpoint churn_risk_unanalyzed "/analytics/churn-risk?limit=50" "$RUNS"
say "VACUUM (ANALYZE) customer_analytics (what autovacuum would do after the first computation)"
t=$(now)
psql_db -c "VACUUM (ANALYZE) customer_analytics"
VACUUM_S=$(since "$t")

say "recompute 2: steady state"
LAST_XID=$(psql_db -c "SELECT txid_current() % 4294967296")
xid_watch
OUT2=$(request POST /analytics/recompute -m 3600)
R2_XID=$(xid_watched)
read -r R2_S _ <<< "$OUT2"
R2_BODY=$(cat "$DATA/last.body")
R2_KEPT=$(kept_cost)
R2_CHANGED=$(psql_db -c "SELECT count(*) FROM customer_analytics WHERE xmin::text::bigint > $LAST_XID")
say "recompute 2: $R2_S s, $R2_BODY; $R2_CHANGED rows rewritten; longest write transaction $R2_XID s; keeping: $R2_KEPT"

# The write floor under the first computation: the same rows into a copy of the table with
# its indexes.
WRITES=()
for _ in 1 2; do
    WRITES+=("$(psql "$PG/$DB" -X -q -v ON_ERROR_STOP=1 \
        -c "CREATE TABLE bench_analytics_copy (LIKE customer_analytics INCLUDING ALL)" -c '\timing on' \
        -c "INSERT INTO bench_analytics_copy SELECT * FROM customer_analytics" \
        | awk '/^Time: / { t = $2 } END { printf "%.4f", t / 1000 }')")
    psql_db -c "DROP TABLE bench_analytics_copy"
done
jq -cn --arg times "${WRITES[*]}" \
    '{name: "write_analytics_rows", sql: "INSERT INTO bench_analytics_copy SELECT * FROM customer_analytics (a new table LIKE customer_analytics INCLUDING ALL: its primary key and four indexes, no foreign key)", runs_s: ($times | split(" ") | map(tonumber))}' \
    >> "$DATA/references.ndjson"
say "reference write_analytics_rows: ${WRITES[*]} s"

say "Pareto"
endpoint pareto "/analytics/pareto?limit=50" "$SLOW_RUNS" group_year
RANKED=$(jq .summary.customers "$DATA/last.body")
SUMMARY=$(jq -c '{customers: .summary.customers, total: .summary.total, top_20_percent_share: .summary.top_20_percent_share, sales_bands: .summary.sales_bands}' "$DATA/last.body")
CURSOR=$(jq -r .next_cursor "$DATA/last.body")
# A cursor is base64url of {"o": "rank", "k": <the last rank served>} (src/http/pagination.rs):
# check it, then make the one that starts three quarters down the ranking.
[ "$(python3 -c 'import base64, json, sys; c = sys.argv[1]; print(json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))["k"])' "$CURSOR")" = 50 ] ||
    fail "the Pareto cursor is not the rank it should be: $CURSOR"
DEEP_RANK=$((RANKED * 3 / 4))
DEEP=$(python3 -c 'import base64, sys; print(base64.urlsafe_b64encode(("{\"o\":\"rank\",\"k\":%s}" % sys.argv[1]).encode()).decode().rstrip("="))' "$DEEP_RANK")
# The same first page ranked for the request (what every page cost before the computation
# kept the default ranking), and the kept one from the top 20 % of sales.
endpoint pareto_live "/analytics/pareto?limit=50&live=true" "$SLOW_RUNS" group_year
endpoint pareto_top_sales "/analytics/pareto?limit=50&top_sales_percent=20" "$SLOW_RUNS" group_year
endpoint pareto_profit "/analytics/pareto?limit=50&measure=profit" "$SLOW_RUNS" group_year_profit
endpoint pareto_deep_page "/analytics/pareto?limit=50&cursor=$DEEP" "$SLOW_RUNS" group_year
[ "$(jq '.data[0].rank' "$DATA/last.body")" = $((DEEP_RANK + 1)) ] || fail "the deep page does not start at rank $((DEEP_RANK + 1))"

say "export of the whole ranking (RSS sampled every 0.1 s)"
# Peak RSS from here: VmHWM reset (clear_refs 5) where the kernel allows it, and sampled.
echo 5 > "/proc/$SERVER/clear_refs" 2>/dev/null || true
(while :; do awk '/VmRSS/ { print $2 }' "/proc/$SERVER/status" 2>/dev/null; sleep 0.1; done) > "$DATA/rss.txt" &
SAMPLER=$!
t=$(now)
curl -sS -o "$DATA/pareto.csv" -w '%{http_code} %{size_download}\n' -H "Authorization: Bearer $TOKEN" \
    -H 'Accept: text/csv' "$API/exports/pareto" > "$DATA/export.txt"
EXPORT_S=$(since "$t")
kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=
read -r EXPORT_CODE EXPORT_BYTES < "$DATA/export.txt"
[ "$EXPORT_CODE" = 200 ] || fail "the export answered $EXPORT_CODE"
EXPORT_ROWS=$(($(wc -l < "$DATA/pareto.csv") - 1))
EXPORT_RSS=$(sort -n "$DATA/rss.txt" | tail -1 | awk '{ printf "%.1f", $1 / 1024 }')
EXPORT_HWM=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status")
rm -f "$DATA/pareto.csv"
say "export: $EXPORT_S s, $EXPORT_ROWS rows, $EXPORT_BYTES bytes, peak RSS $EXPORT_RSS MB sampled (VmHWM $EXPORT_HWM MB, idle $IDLE_RSS MB)"
[ "$EXPORT_ROWS" = "$RANKED" ] || fail "the export has $EXPORT_ROWS rows, the ranking $RANKED"

say "segments, churn risk, customers, forecast"
# The service's own live statement (src/analytics/segments.sql), by hand: every live customer
# counted (no owner, no groups). Older services kept it inside store.rs: then no reference.
if [ -r src/analytics/segments.sql ]; then
    SEGMENTS_SQL=$(sed 's/--.*$//' src/analytics/segments.sql)
    [[ "$SEGMENTS_SQL" == *"GROUPING SETS"* ]] || fail "could not read the segments statement from src/analytics/segments.sql"
    SEGMENTS_SQL=${SEGMENTS_SQL//\$1/50::smallint}
    SEGMENTS_SQL=${SEGMENTS_SQL//\$2/NULL}
    SEGMENTS_SQL=${SEGMENTS_SQL//\$3/false}
    reference segments_by_hand "SELECT count(*) FROM ($SEGMENTS_SQL) s" "$RUNS"
fi
endpoint segments "/analytics/segments" "$RUNS" segments_floor
endpoint segments_live "/analytics/segments?live=true" "$RUNS" segments_floor
SEGMENT_COUNTS=$(jq -c '{value_tier: [.value_tier[] | {key, customers}], loyalty_tier: [.loyalty_tier[] | {key, customers}]}' "$DATA/last.body")

CHURN="SELECT a.*, c.name, c.lifecycle_stage, c.account_manager_id
       FROM customer_analytics a JOIN customers c ON c.id = a.customer_id
       WHERE a.churn_score >= 50 AND c.deleted_at IS NULL"
reference churn_by_hand "$CHURN ORDER BY a.churn_score DESC, a.customer_id LIMIT 51" "$FAST_RUNS"
reference churn_complaints_by_hand "$CHURN AND a.churn_reasons && '{open_complaints}'
       ORDER BY a.churn_score DESC, a.customer_id LIMIT 51" "$FAST_RUNS"
endpoint churn_risk "/analytics/churn-risk?limit=50" "$FAST_RUNS" churn_by_hand
endpoint churn_risk_open_complaints "/analytics/churn-risk?limit=50&reason=open_complaints" "$FAST_RUNS" churn_complaints_by_hand

reference customers_key_by_hand "SELECT * FROM customers c
    WHERE c.deleted_at IS NULL
      AND c.id IN (SELECT customer_id FROM customer_analytics WHERE value_tier = 'key')
    ORDER BY c.created_at DESC, c.id DESC LIMIT 51" "$FAST_RUNS"
endpoint customers_value_tier_key "/customers?value_tier=key&limit=50" "$FAST_RUNS" customers_key_by_hand
CUSTOMER=$(jq -r '.data[0].id' "$DATA/last.body")
reference customer_by_hand "SELECT * FROM customers c LEFT JOIN customer_analytics a ON a.customer_id = c.id
    WHERE c.id = '$CUSTOMER'" "$FAST_RUNS"
endpoint customer "/customers/$CUSTOMER" "$FAST_RUNS" customer_by_hand
jq -e '.analytics.value_tier == "key"' "$DATA/last.body" >/dev/null ||
    fail "GET /v1/customers/$CUSTOMER carries no analytics block of a key customer"

endpoint forecast "/analytics/forecast?period=$YEAR" "$RUNS" forecast_floor
FORECAST=$(jq -c '[.currencies[] | {currency, forecast, won_amount, weighted_open, won_count, open_count, owners: (.by_owner | length), stages: (.by_stage | length)}]' "$DATA/last.body")
stop

# ---- 4. plans ----------------------------------------------------------------------------
say "plans (auto_explain, ANALYZE and BUFFERS)"
PLANS="$OUT/analytics_plans.txt"
{
    echo "# Query plans of bench/analytics.sh ($CUSTOMERS customers), $(date -u +%FT%TZ)"
    echo "#"
    echo "# The service's statements, one request at a time, from auto_explain (log_analyze,"
    echo "# log_buffers, every statement): each request's statements are listed with their time,"
    echo "# and the plans of those over 1 ms are shown. Then the references, by EXPLAIN (ANALYZE,"
    echo "# BUFFERS) in psql."
    echo
} > "$PLANS"
psql_admin -c "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 0" \
    -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on" \
    -c "ALTER DATABASE $DB SET auto_explain.log_buffers = on"
serve
plan() { # method path label [curl args]
    local method=$1 path=$2 label=$3 start out api
    shift 3
    start=$(stat -c %s "$PGLOG")
    out=$(request "$method" "$path" -m 3600 "$@")
    read -r api _ <<< "$out"
    sleep 0.5
    tail -c +"$((start + 1))" "$PGLOG" > "$DATA/one.log"
    python3 bench/analytics/plans.py "$DATA/one.log" "$DB" "$label $method /v1$path   [$api s through the API, with auto_explain]" >> "$PLANS"
}
plan POST /analytics/recompute "recompute (steady state):"
plan GET "/analytics/pareto?limit=50" "Pareto, first page:"
plan GET "/analytics/pareto?limit=50&measure=profit" "Pareto, profit:"
plan GET "/analytics/pareto?limit=50&cursor=$DEEP" "Pareto, from rank $((DEEP_RANK + 1)):"
plan GET /exports/pareto "export, every batch:" -H 'Accept: text/csv'
plan GET /analytics/segments "segments:"
plan GET "/analytics/churn-risk?limit=50" "churn risk:"
plan GET "/analytics/churn-risk?limit=50&reason=open_complaints" "churn risk, open complaints:"
plan GET "/customers?value_tier=key&limit=50" "customers, key tier:"
plan GET "/customers/$CUSTOMER" "a customer with their analytics:"
plan GET "/analytics/forecast?period=$YEAR" "forecast:"
stop
psql_admin -c "ALTER DATABASE $DB RESET ALL"
{
    echo "## References (EXPLAIN (ANALYZE, BUFFERS) in psql)"
    echo
    for entry in "group_year|$YEAR_SUM" "group_year_profit|$YEAR_PROFIT" "segments_floor|$SEGMENTS_FLOOR" \
        "forecast_floor|$FORECAST_FLOOR"; do
        echo "### ${entry%%|*}: $(echo "${entry#*|}" | tr -s ' \n' ' ')"
        psql_db -c "EXPLAIN (ANALYZE, BUFFERS) ${entry#*|}" | sed 's/^/    /'
        echo
    done
} >> "$PLANS"
say "plans written to $PLANS"

# ---- 5. what would help (measured by hand, src/ untouched) ---------------------------------
say "what would help: the Pareto page joined to customers after the LIMIT (bench/analytics/pareto.sql)"
# Seconds and the rows' digest of bench/analytics/pareto.sql: page_first after fetch.
pareto_by_hand() {
    psql_db -v cur=EUR -v from="$(date -u -d '364 days ago' +%F)" -v to="$(date -u +%F)" -v after="$2" \
        -v top=NULL -v fetch="$3" -v page_first="$1" -c '\timing on' -f bench/analytics/pareto.sql \
        | awk -F'|' '/^Time: / { split($0, t, " "); s = t[2] / 1000 } !/^Time: / { d = $3 } END { printf "%.3f %s", s, d }'
}
WHAT_IF=()
for entry in "first_page|0|51" "deep_page|$DEEP_RANK|51" "export_batch|0|50001"; do
    IFS='|' read -r name after fetch <<< "$entry"
    as_is=(); first=(); digests=()
    for _ in 1 2; do
        read -r t d <<< "$(pareto_by_hand false "$after" "$fetch")"; as_is+=("$t"); digests+=("$d")
        read -r t d <<< "$(pareto_by_hand true "$after" "$fetch")"; first+=("$t"); digests+=("$d")
    done
    [ "$(printf '%s\n' "${digests[@]}" | sort -u | wc -l)" = 1 ] || fail "the page-first Pareto statement gives other rows ($name)"
    WHAT_IF+=("$(jq -cn --arg name "pareto_$name" --arg after "$after" --arg fetch "$fetch" --arg a "${as_is[*]}" --arg b "${first[*]}" \
        '{name: $name, after_rank: ($after | tonumber), fetch: ($fetch | tonumber),
          as_is_s: ($a | split(" ") | map(tonumber)), page_first_s: ($b | split(" ") | map(tonumber)), same_rows: true}')")
    say "pareto $name: as the service runs it ${as_is[*]} s, page first ${first[*]} s (same rows)"
done

say "what would help: the computation's statement with the default work_mem and with 256MB (steady state)"
# COMPUTE (src/analytics/store.rs): compute.sql with the aspect sums put in its place.
COMPUTE_SQL=$(python3 -c 'import sys; print(open(sys.argv[1]).read().replace("/*ASPECT_SUMS*/", open(sys.argv[2]).read()))' \
    src/analytics/compute.sql src/analytics/aspect_sums.sql)
[[ "$COMPUTE_SQL" == *"LEFT JOIN customer_analytics"* ]] || fail "could not read COMPUTE from src/analytics/compute.sql"
for work_mem in default 256MB; do
    at="'$(date -u +%FT%T.%6NZ)'::timestamptz"
    out=$({ echo "BEGIN READ ONLY;"
            [ "$work_mem" = default ] || echo "SET LOCAL work_mem = '$work_mem';"
            echo '\timing on'
            echo "SELECT count(*) FROM (${COMPUTE_SQL//\$1::timestamptz/$at}) changed;"
            echo '\timing off'
            echo "ROLLBACK;"; } | psql_db -f - | tr '\n' ' ')
    t=$(echo "$out" | awk '{ for (i = 1; i < NF; i++) if ($i == "Time:") s = $(i + 1) / 1000 } END { printf "%.2f", s }')
    WHAT_IF+=("$(jq -cn --arg v "$work_mem" --arg t "$t" --arg out "${out%% Time:*}" \
        '{name: "compute", variant: $v, seconds: ($t | tonumber), rows_changed: $out}')")
    say "COMPUTE, work_mem $work_mem: $t s (rows changed: ${out%% Time:*})"
done
WHAT_IF_JSON="[$(IFS=,; echo "${WHAT_IF[*]}")]"

# ---- 6. moving the customers at risk -----------------------------------------------------
R3_S=null
R3_BODY=null
R3_HWM=null
R3_XID=0
if [ -z "${BENCH_SKIP_DISSOLUTION:-}" ]; then
    serve
    say "recompute 3: move_to_dissolution on (PUT /v1/analytics/settings with If-Match)"
    curl -fsS -D "$DATA/settings.headers" -o "$DATA/settings.json" -H "Authorization: Bearer $TOKEN" "$API/analytics/settings"
    ETAG=$(awk 'tolower($1) == "etag:" { print $2 }' "$DATA/settings.headers" | tr -d '\r')
    jq '{currency, measure, window_days, key_percent, development_percent, maintenance_percent,
         high_value_percent, churn_threshold, contact_days, move_to_dissolution: true}' "$DATA/settings.json" \
        | curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $TOKEN" -H "If-Match: $ETAG" \
            -H 'Content-Type: application/json' --data @- "$API/analytics/settings"
    xid_watch
    OUT3=$(request POST /analytics/recompute -m 3600)
    R3_XID=$(xid_watched)
    read -r R3_S _ <<< "$OUT3"
    R3_BODY=$(cat "$DATA/last.body")
    R3_HWM=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status")
    say "recompute 3: $R3_S s, $R3_BODY; the service's peak RSS $R3_HWM MB (since its start just before); longest write transaction $R3_XID s"
    stop
fi

# ---- results -----------------------------------------------------------------------------
TOTAL_S=$(since "$STARTED")
python3 - "$OUT/analytics.json" <<PY
import json, re, statistics
out = "$OUT/analytics.json"
refs = {r["name"]: r for r in map(json.loads, open("$DATA/references.ndjson"))}
for r in refs.values():
    r["seconds"] = round(statistics.median(r["runs_s"]), 6)
ends = [json.loads(l) for l in open("$DATA/endpoints.ndjson")]
for e in ends:
    e["seconds"] = round(statistics.median(e["runs_s"]), 6)
    ref = refs.get(e["reference"])
    if ref:
        e["reference_seconds"] = ref["seconds"]
        e["ratio_to_reference"] = round(e["seconds"] / ref["seconds"], 2) if ref["seconds"] else None
group = refs["group_year"]["seconds"]
recompute = [
    {"pass": 1, "what": "every row written", "seconds": float("$R1_S"), "answer": json.loads('''$R1_BODY'''),
     "rows_written": int("$R1_ROWS"), "reference": "group_year", "reference_seconds": group,
     "ratio_to_reference": round(float("$R1_S") / group, 2),
     "write_floor_seconds": refs["write_analytics_rows"]["seconds"],
     "longest_write_transaction_s": float("$R1_XID"), "kept": json.loads('$R1_KEPT')},
    {"pass": 2, "what": "steady state", "seconds": float("$R2_S"), "answer": json.loads('''$R2_BODY'''),
     "rows_written": int("$R2_CHANGED"), "reference": "group_year", "reference_seconds": group,
     "ratio_to_reference": round(float("$R2_S") / group, 2),
     "longest_write_transaction_s": float("$R2_XID"), "kept": json.loads('$R2_KEPT')},
]
if "$R3_S" != "null":
    recompute.append({"pass": 3, "what": "move_to_dissolution on", "seconds": float("$R3_S"),
                      "answer": json.loads('''$R3_BODY'''), "service_peak_rss_mb": $R3_HWM, "reference": "group_year",
                      "longest_write_transaction_s": float("$R3_XID"),
                      "reference_seconds": group, "ratio_to_reference": round(float("$R3_S") / group, 2)})
copy = refs["ranking_copy"]
result = {
    "customers": int("$CUSTOMERS"),
    "machine": {"cores": $(nproc), "load_average_at_start": "$LOAD_AT_START",
                "load_average_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)"},
    "service": "$SERVICE",
    "data_set": json.loads('''$DATASET'''),
    "seed_seconds": json.loads('''$SEED_JSON'''),
    "analytics": json.loads('''$ANALYTICS'''),
    "vacuum_analyze_customer_analytics_seconds": float("$VACUUM_S"),
    "references": refs,
    "recompute": recompute,
    "endpoints": ends,
    "what_would_help": json.loads('''$WHAT_IF_JSON'''),
    "pareto_summary": json.loads('''$SUMMARY'''),
    "pareto_deep_page_after_rank": $DEEP_RANK,
    "export": {"request": "GET /v1/exports/pareto (Accept: text/csv)", "seconds": float("$EXPORT_S"),
               "rows": $EXPORT_ROWS, "bytes": $EXPORT_BYTES,
               "service_rss_mb": {"idle_at_start": $IDLE_RSS, "peak_sampled": $EXPORT_RSS, "vm_hwm": $EXPORT_HWM},
               "reference": "ranking_copy", "reference_seconds": copy["seconds"], "reference_bytes": copy["bytes"],
               "ratio_to_reference": round(float("$EXPORT_S") / copy["seconds"], 2)},
    "segments": json.loads('''$SEGMENT_COUNTS'''),
    "forecast": json.loads('''$FORECAST'''),
    "script_seconds": float("$TOTAL_S"),
}
json.dump(result, open(out, "w"), indent=2)
open(out, "a").write("\n")

def row(what, s, ref, rs):
    what = re.sub(r"cursor=[^&]+", f"cursor=<rank {$DEEP_RANK}>", what)
    what = re.sub(r"customers/[0-9a-f-]{36}", "customers/{id}", what)
    print(f"{what:<62} {s:>9.3f}  {ref:<24} " + (f"{rs:>8.3f} {s / rs:>8.1f}" if rs else ""))
print(f"\n{'request':<62} {'seconds':>9}  {'reference':<24} {'seconds':>8} {'ratio':>8}")
for r in recompute:
    row(f"POST /v1/analytics/recompute ({r['what']})", r["seconds"], "group_year", group)
row("GET /v1/exports/pareto", float("$EXPORT_S"), "ranking_copy", copy["seconds"])
for e in ends:
    note = " (unanalyzed)" if e["name"] == "churn_risk_unanalyzed" else ""
    row(e["request"] + note, e["seconds"], e["reference"], e.get("reference_seconds", 0))
print("\nkeeping the Pareto rankings and the segments, within each computation:")
for r in recompute:
    if r.get("kept"):
        print(f"  {r['what']:<40} rankings {r['kept']['rankings_s']:>6.2f} s, segments {r['kept']['segments_s']:>6.2f} s")
print("\nlongest write transaction during each computation (what the event feed waits for):")
for r in recompute:
    print(f"  {r['what']:<40} {r['longest_write_transaction_s']:>7.2f} s of {r['seconds']:.1f} s")
print(f"\nscript: {float('$TOTAL_S'):.0f} s")
PY
