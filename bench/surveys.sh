#!/usr/bin/env bash
# Rapport's survey benchmark, against the existing bench database (bench/run.sh runs it last,
# after its own scenarios; alone, it needs only a seeded `rapport_bench`):
#
#   bench/surveys.sh [seconds-per-scenario=15]
#
# 1. Creates the survey of bench/surveys/survey.json through the API (every question type,
#    three expectation-performance attributes, one per Kano category) and activates it, then
#    seeds one response per live customer straight into survey_responses, the roll-up
#    survey_stats and customer_satisfaction, each in one INSERT ... SELECT, timed. What an
#    earlier run left is removed first.
# 2. Checks the roll-up: every dimension counts every response once, every question's answers
#    too, and the API's results count them all. Stops on the first difference.
# 3. Measures the survey requests with bench/target/release/load beside `pgbench -S` (measured
#    here unless run.sh passes its own figure in PGBENCH_TPS and PGBENCH_PCT), then checks
#    that the roll-up the service wrote for the responses posted under load is exactly the one
#    recomputed from those responses.
# 4. Records the plans of the results and the detractor lists in bench/results/survey_plans.txt.
# 5. Clusters survey_stats by its key and times the results again, one request at a time.
#
# Figures: bench/results/surveys.json, also merged into bench/results/latest.json ("surveys").
# Builds the service into $CARGO_TARGET_DIR (default target/) unless BENCH_SKIP_BUILD is set.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-15}
CONCURRENCY=${CONCURRENCY:-16}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_DB:-rapport_bench}
PORT=${BENCH_PORT:-18080}
BASE="http://127.0.0.1:$PORT"
DATA=bench/data
OUT=bench/results
RAPPORT=${CARGO_TARGET_DIR:-target}/release/rapport
LOAD=bench/target/release/load
SECRET=bench-secret-bench-secret-bench-secret-0123
PGLOG=${BENCH_PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
fail() { printf '\nSURVEY STAGE FAILED: %s\n\n' "$*" >&2; exit 1; }
psql_admin() { psql "$PG/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_db() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }
clock() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(clock)" 'BEGIN { printf "%.1f", b - a }'; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
    (cd bench && CARGO_TARGET_DIR=target cargo build --release -q)
fi
[ "$(psql_admin -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 1 ] ||
    fail "no database $DB: seed it with bench/run.sh"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
# The build measured: the service's code as committed (-dirty with changes not committed).
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations Cargo.lock || echo -dirty)
say "machine: $(nproc) cores, load average $LOAD_AT_START"

serve() {
    # Another service on the port would answer for this one (and get its writes).
    ! curl -fs "$BASE/readyz" >/dev/null 2>&1 || fail "port $PORT is taken: set BENCH_PORT"
    DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn \
        RAPPORT_JWT_SECRET=$SECRET RAPPORT_DB_POOL_SIZE=16 "$RAPPORT" serve &
    SERVER=$!
    for _ in $(seq 1 600); do
        kill -0 "$SERVER" 2>/dev/null || fail "rapport exited at startup"
        curl -fs "$BASE/readyz" >/dev/null && return 0
        sleep 0.1
    done
    fail "rapport did not start"
}
stop() { [ -n "${SERVER:-}" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }; SERVER=; }
trap stop EXIT
api() { # method path [body]: the JSON answer; fails on an error status
    local method=$1 path=$2
    shift 2
    curl -fsS -X "$method" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        "$@" "$BASE$path"
}

# The service migrates the database at startup: the survey tables appear on the first run.
serve
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role manager --ttl 2h 2>/dev/null)

say "surveys: removing an earlier run's surveys"
t=$(clock)
psql_db -f bench/surveys/cleanup.sql
CLEANUP_S=$(since "$t")

say "surveys: creating and activating two surveys through the API"
t=$(clock)
SURVEY=$(api POST /v1/surveys --data @bench/surveys/survey.json | jq -r .id)
api PATCH "/v1/surveys/$SURVEY" -H 'If-Match: "1"' --data '{"status": "active"}' >/dev/null
# The second takes the responses posted under load: the same questions, several per customer.
RESPOND=$(jq '.name = "Bench: responses posted under load" | .allow_multiple_responses = true' \
    bench/surveys/survey.json | api POST /v1/surveys --data @- | jq -r .id)
api PATCH "/v1/surveys/$RESPOND" --data '{"status": "active"}' >/dev/null
API_S=$(since "$t")
say "survey $SURVEY (seeded), survey $RESPOND (posted to under load)"

say "surveys: one response per live customer (INSERT ... SELECT from customers)"
t=$(clock)
psql_db -v survey="$SURVEY" -f bench/surveys/responses.sql
RESPONSES_S=$(since "$t")
RESPONSES=$(psql_db -c "SELECT count(*) FROM survey_responses WHERE survey_id = '$SURVEY'")
say "$RESPONSES responses in ${RESPONSES_S}s"

say "surveys: the daily roll-up (one INSERT ... SELECT ... GROUP BY)"
# Written day after day, as the service writes it: each day's rows together, the dimensions
# mixed within a day. (How the rows lie matters to the results: see bench/README.md, Surveys.)
t=$(clock)
psql_db -v survey="$SURVEY" -f bench/surveys/roll_up.sql \
    -c "SET work_mem = '256MB'" \
    -c "INSERT INTO survey_stats SELECT * FROM pg_temp.survey_roll_up('$SURVEY') ORDER BY day" \
    -c "INSERT INTO survey_stats_months SELECT * FROM pg_temp.survey_months('$SURVEY') ORDER BY month"
STATS_S=$(since "$t")
STATS_ROWS=$(psql_db -c "SELECT count(*) FROM survey_stats WHERE survey_id = '$SURVEY'")
MONTH_ROWS=$(psql_db -c "SELECT count(*) FROM survey_stats_months WHERE survey_id = '$SURVEY'")
say "$STATS_ROWS daily and $MONTH_ROWS monthly roll-up rows in ${STATS_S}s"

say "surveys: each customer's latest scores"
t=$(clock)
psql_db -f bench/surveys/satisfaction.sql
SATISFACTION_S=$(since "$t")
SATISFACTION=$(psql_db -c "SELECT count(*) FROM customer_satisfaction")
DETRACTORS=$(psql_db -c "SELECT count(*) FROM customer_satisfaction WHERE nps <= 6")
say "$SATISFACTION customers' scores ($DETRACTORS detractors) in ${SATISFACTION_S}s"

t=$(clock)
psql_db -c "VACUUM (ANALYZE) survey_responses, survey_stats, survey_stats_months, customer_satisfaction, surveys" -c "CHECKPOINT"
VACUUM_S=$(since "$t")
SIZES=$(psql_db -c "SELECT json_object_agg(t, pg_size_pretty(pg_total_relation_size(t::regclass)))
                    FROM unnest(ARRAY['survey_responses', 'survey_stats', 'survey_stats_months', 'customer_satisfaction']) t")
say "VACUUM (ANALYZE) in ${VACUUM_S}s; sizes: $SIZES"

say "surveys: checking the roll-up"
# Every dimension counts each response once (question_key ''), and each question's answers
# (the rows without a choice, and not an attribute's E counted alone) as often as responses
# answer it.
DIMENSIONS=$(psql_db -F ' ' -c "
    SELECT coalesce(nullif(d.dimension, ''), 'overall'), coalesce(sum(s.n), 0),
           (SELECT count(*) FROM survey_responses WHERE survey_id = '$SURVEY')
    FROM (VALUES (''), ('tier'), ('lifecycle_stage'), ('region_type')) AS d(dimension)
    LEFT JOIN survey_stats s ON s.survey_id = '$SURVEY' AND s.dimension = d.dimension
                            AND s.question_key = ''
    GROUP BY d.dimension ORDER BY d.dimension")
printf '%s\n' "$DIMENSIONS" | awk '{ printf "    %-16s sum(n) %s, responses %s\n", $1, $2, $3 }' >&2
printf '%s\n' "$DIMENSIONS" | awk '$2 != $3 || $3 == 0 { bad = 1 } END { exit bad }' ||
    fail "survey_stats does not count every response once under every dimension (sum(n) of the question_key '' rows above)"
ANSWERS_OFF=$(psql_db -c "
    WITH q AS (SELECT x.key FROM surveys s, jsonb_to_recordset(s.questions) x(key text)
               WHERE s.id = '$SURVEY'),
    answered AS (SELECT q.key, count(r.id) AS n FROM q
                 LEFT JOIN survey_responses r ON r.survey_id = '$SURVEY' AND r.answers ? q.key
                 GROUP BY q.key)
    SELECT string_agg(format('%s under %L: %s counted, %s answered', a.key, d.dimension,
                             coalesce(s.n, 0), a.n), '; ')
    FROM answered a
    CROSS JOIN (VALUES (''), ('tier'), ('lifecycle_stage'), ('region_type')) AS d(dimension)
    LEFT JOIN LATERAL (SELECT sum(n) AS n FROM survey_stats
                       WHERE survey_id = '$SURVEY' AND dimension = d.dimension
                         AND question_key = a.key AND choice IS NULL
                         AND (score IS NOT NULL OR expectation IS NULL)) s ON true
    WHERE coalesce(s.n, 0) <> a.n")
[ -z "$ANSWERS_OFF" ] || fail "survey_stats miscounts answers: $ANSWERS_OFF"
# The monthly roll-up is the daily one summed by month.
MONTHS_OFF=$(psql_db -f bench/surveys/roll_up.sql -c "
    SELECT count(*) FROM (
        (SELECT * FROM survey_stats_months WHERE survey_id = '$SURVEY'
         EXCEPT ALL SELECT * FROM pg_temp.survey_months('$SURVEY'))
        UNION ALL
        (SELECT * FROM pg_temp.survey_months('$SURVEY')
         EXCEPT ALL SELECT * FROM survey_stats_months WHERE survey_id = '$SURVEY')) AS differing")
[ "$MONTHS_OFF" = 0 ] || fail "survey_stats_months differs from survey_stats summed by month in $MONTHS_OFF rows"
# The API counts them all: overall, and summed over the months and over the tiers.
RANGE=$(psql_db -c "SELECT format('from=%s&to=%s', min(day), max(day)) FROM survey_stats
                    WHERE survey_id = '$SURVEY' AND dimension = ''")
API_OVERALL=$(api GET "/v1/surveys/$SURVEY/results" | jq .responses)
API_MONTHS=$(api GET "/v1/surveys/$SURVEY/results?$RANGE&group_by=month" | jq '[.responses, ([.groups[].responses] | add), (.groups | length)] | join(" ")' -r)
API_TIERS=$(api GET "/v1/surveys/$SURVEY/results?$RANGE&group_by=tier" | jq '[.responses, ([.groups[].responses] | add), (.groups | length)] | join(" ")' -r)
say "API: responses $API_OVERALL; by month (overall, sum, months) $API_MONTHS; by tier $API_TIERS"
[ "$API_OVERALL" = "$RESPONSES" ] || fail "GET results counts $API_OVERALL responses, the survey has $RESPONSES"
for line in "$API_MONTHS" "$API_TIERS"; do
    read -r overall sum _ <<<"$line"
    [ "$overall" = "$RESPONSES" ] && [ "$sum" = "$RESPONSES" ] ||
        fail "grouped results count $overall overall and $sum in their groups; the survey has $RESPONSES"
done
api GET "/v1/surveys/$SURVEY/results" > "$OUT/survey_results.json"
say "roll-up checked: every count matches ($RESPONSES responses)"

if [ -n "${PGBENCH_TPS:-}" ] && [ -n "${PGBENCH_PCT:-}" ]; then
    PGBENCH_HERE=false
else
    say "pgbench -S -M prepared (scale 10: a million pgbench_accounts rows)"
    PGBENCH_HERE=true
    psql_admin -c "DROP DATABASE IF EXISTS rapport_pgbench WITH (FORCE)" -c "CREATE DATABASE rapport_pgbench"
    pgbench -q -i -s 10 "$PG/rapport_pgbench" >/dev/null 2>&1
    rm -f /tmp/rapport_pgbench_log*
    PGBENCH=$(pgbench -S -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" -l --log-prefix=/tmp/rapport_pgbench_log \
        "$PG/rapport_pgbench" 2>/dev/null)
    PGBENCH_TPS=$(echo "$PGBENCH" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    PGBENCH_PCT=$(cat /tmp/rapport_pgbench_log* | awk '{print $3}' | sort -n | awk '
        {a[NR]=$1} END {printf "%.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
    psql_admin -c "DROP DATABASE rapport_pgbench WITH (FORCE)"
fi
say "pgbench: $PGBENCH_TPS tps, p50/p99 ms: $PGBENCH_PCT"

# The customers who post responses: live ones (the service refuses deleted customers).
psql_db -c "SELECT id FROM customers WHERE deleted_at IS NULL AND erased_at IS NULL
            ORDER BY random() LIMIT 10000" > "$DATA/live_customer_ids.txt"
# One request at a time (no queue in front of the service): the time each read takes alone.
YEAR="from=$(date -u -d '365 days ago' +%F)&to=$(date -u +%F)"
SINGLE=()
for entry in "survey_results|surveys/$SURVEY/results?$YEAR" \
    "survey_results_month|surveys/$SURVEY/results?$YEAR&group_by=month" \
    "survey_results_tier|surveys/$SURVEY/results?$YEAR&group_by=tier" \
    "survey_results_stage|surveys/$SURVEY/results?$YEAR&group_by=lifecycle_stage" \
    "survey_detractors|surveys/$SURVEY/responses?nps_max=6&limit=50" \
    "customers_detractors|customers?nps_category=detractor&limit=50"; do
    name=${entry%%|*}
    times=$(for i in $(seq 0 20); do
        curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$BASE/v1/${entry#*|}"
    done | tail -n +2 | sort -n)
    median=$(echo "$times" | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}')
    SINGLE+=("\"$name\": $median")
    say "one at a time: $name ${median} ms (median of 20)"
done

RESULTS=()
for scenario in survey_results survey_results_month survey_results_tier survey_results_stage \
    survey_detractors customers_detractors survey_respond; do
    survey=$SURVEY
    [ "$scenario" = survey_respond ] && survey=$RESPOND
    say "load: $scenario ($CONCURRENCY connections, ${DURATION}s)"
    if [ "$scenario" = survey_respond ]; then
        # What the writers wait for: five times a second, the service's sessions waiting for
        # a lock, and the statements that wait.
        (while :; do
            psql_db -c "SELECT count(*) FILTER (WHERE a.wait_event_type = 'Lock'),
                               count(*) FILTER (WHERE a.state = 'active'),
                               coalesce(string_agg(left(regexp_replace(a.query, '\s+', ' ', 'g'), 40), ';;')
                                            FILTER (WHERE a.wait_event_type = 'Lock'), '')
                        FROM pg_stat_activity a
                        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                          AND a.backend_type = 'client backend'" 2>/dev/null || true
            sleep 0.2
        done) > /tmp/rapport_survey_waits.txt &
        SAMPLER=$!
    fi
    line=$("$LOAD" --base "$BASE" --token "$TOKEN" --scenario "$scenario" --data "$DATA" \
        --survey "$survey" --concurrency "$CONCURRENCY" --duration "$DURATION")
    if [ "$scenario" = survey_respond ]; then
        kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
        WAITS=$(awk -F'|' '{ n++; w += $1; a += $2; k = split($3, q, ";;"); for (i = 1; i <= k; i++) { gsub(/"/, "", q[i]); t[q[i]]++ } }
            END { printf "{\"samples\": %d, \"mean_waiting_for_a_lock\": %.1f, \"mean_active\": %.1f, \"waiting_statements\": {", n, w / n, a / n;
                  sep = ""; for (k in t) { printf "%s\"%s\": %d", sep, k, t[k]; sep = ", " } print "}}" }' \
            /tmp/rapport_survey_waits.txt)
        say "while responses were posted: $WAITS"
    fi
    say "$line"
    RESULTS+=("$line")
done

say "surveys: checking the roll-up the service wrote under load"
POSTED=$(psql_db -c "SELECT count(*) FROM survey_responses WHERE survey_id = '$RESPOND'")
[ "$POSTED" -gt 0 ] || fail "no response was recorded under load"
# The responses appended their counts; the service folds them into the roll-up every second
# (RAPPORT_SURVEY_FOLD_INTERVAL). What was left at the end of the load, and how long the
# service took to fold it.
unfolded() { psql_db -c "SELECT count(*) FROM survey_stats_deltas WHERE survey_id = '$RESPOND'"; }
UNFOLDED=$(unfolded)
t=$(clock)
for _ in $(seq 300); do [ "$(unfolded)" = 0 ] && break; sleep 0.1; done
[ "$(unfolded)" = 0 ] || fail "the service left counts of survey $RESPOND unfolded for 30 s"
FOLDED_S=$(since "$t")
say "$UNFOLDED appended counts left at the end of the load, folded in ${FOLDED_S}s"
# What the service's count() wrote, row for row, against the same rows recomputed from the
# responses by bench/surveys/roll_up.sql (which seeded the first survey).
DIFFERENT=$(psql_db -f bench/surveys/roll_up.sql -c "
    SELECT count(*) FROM (
        (SELECT survey_id, dimension, day, segment, question_key, score, expectation, choice, n
         FROM survey_stats WHERE survey_id = '$RESPOND'
         EXCEPT ALL SELECT * FROM pg_temp.survey_roll_up('$RESPOND'))
        UNION ALL
        (SELECT * FROM pg_temp.survey_roll_up('$RESPOND')
         EXCEPT ALL
         SELECT survey_id, dimension, day, segment, question_key, score, expectation, choice, n
         FROM survey_stats WHERE survey_id = '$RESPOND')) AS differing")
# And the months the service wrote beside the days are those days summed by month.
DIFFERENT_MONTHS=$(psql_db -f bench/surveys/roll_up.sql -c "
    SELECT count(*) FROM (
        (SELECT * FROM survey_stats_months WHERE survey_id = '$RESPOND'
         EXCEPT ALL SELECT * FROM pg_temp.survey_months('$RESPOND'))
        UNION ALL
        (SELECT * FROM pg_temp.survey_months('$RESPOND')
         EXCEPT ALL SELECT * FROM survey_stats_months WHERE survey_id = '$RESPOND')) AS differing")
POSTED_ROWS=$(psql_db -c "SELECT count(*) FROM survey_stats WHERE survey_id = '$RESPOND'")
# The seeded answers have the shapes of the answers the service stored: per question, the
# same JSON types (and the same fields in an expectation_performance answer).
SHAPES=$(psql_db -c "
    WITH shapes AS (
        SELECT DISTINCT r.survey_id = '$SURVEY' AS seeded, a.key, jsonb_typeof(a.value) AS type,
               (SELECT string_agg(f, ',' ORDER BY f) FROM jsonb_object_keys(
                    CASE WHEN jsonb_typeof(a.value) = 'object' THEN a.value END) f) AS fields,
               CASE WHEN jsonb_typeof(a.value) = 'array'
                    THEN jsonb_typeof(a.value -> 0) END AS items
        FROM survey_responses r, jsonb_each(r.answers) a
        WHERE r.id IN ((SELECT id FROM survey_responses WHERE survey_id = '$SURVEY' LIMIT 50000)
                       UNION ALL
                       (SELECT id FROM survey_responses WHERE survey_id = '$RESPOND' LIMIT 50000)))
    SELECT coalesce(string_agg(format('%s %s %s %s', key, type, fields, items), '; '), '')
    FROM (SELECT key, type, fields, items FROM shapes GROUP BY 1, 2, 3, 4
          HAVING count(*) = 1) AS one_sided")
say "$POSTED responses posted under load, $POSTED_ROWS roll-up rows, $DIFFERENT differing from the recomputed roll-up"
[ "$DIFFERENT" = 0 ] || fail "the roll-up the service wrote for survey $RESPOND differs from the one recomputed from its responses in $DIFFERENT rows"
[ "$DIFFERENT_MONTHS" = 0 ] || fail "the monthly roll-up the service wrote for survey $RESPOND differs from its daily one summed by month in $DIFFERENT_MONTHS rows"
[ -z "$SHAPES" ] || fail "the seeded answers' shapes differ from the service's: $SHAPES"
stop

say "surveys: query plans"
MONTH_FROM=$(date -u -d '365 days ago' +%F)
TODAY=$(date -u +%F)
echo "# Query plans of the survey stage ($RESPONSES responses, $STATS_ROWS daily roll-up rows), $(date -u +%FT%TZ)" > "$OUT/survey_plans.txt"
echo >> "$OUT/survey_plans.txt"
# The statements the service runs, as it runs them: auto_explain for every statement of one
# request at a time; each request's slowest statement is kept (bench/plans.py), marked
# NO INDEX when any statement of the request read a table whole.
psql_admin -c "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 0" \
    -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on" \
    -c "ALTER DATABASE $DB SET auto_explain.log_buffers = on"
serve
PATHS=(
    "surveys/$SURVEY/results?from=$MONTH_FROM&to=$TODAY&group_by=month"
    "surveys/$SURVEY/results?from=$MONTH_FROM&to=$TODAY"
    "surveys/$SURVEY/results?from=$MONTH_FROM&to=$TODAY&group_by=tier"
    "surveys/$SURVEY/results?from=$MONTH_FROM&to=$TODAY&group_by=lifecycle_stage"
    "surveys/$SURVEY/responses?nps_max=6&limit=50"
    "customers?nps_category=detractor&limit=50"
)
echo "## The service's requests (auto_explain; the slowest statement of each)" >> "$OUT/survey_plans.txt"
echo >> "$OUT/survey_plans.txt"
for path in "${PATHS[@]}"; do
    curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/v1/$path" # warm the cache
    start=$(stat -c %s "$PGLOG")
    curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/v1/$path"
    sleep 0.3
    tail -c +"$((start + 1))" "$PGLOG" > /tmp/rapport_survey_one.log
    PLANS_TABLES=survey_stats,survey_responses,customer_satisfaction,customers \
        python3 bench/plans.py --slowest /tmp/rapport_survey_one.log "$DB" "/v1/$path" >> "$OUT/survey_plans.txt"
done
stop
psql_admin -c "ALTER DATABASE $DB RESET ALL"
say "plans written to $OUT/survey_plans.txt ($(grep -c 'NO INDEX' "$OUT/survey_plans.txt" || true) without an index)"

# The same reads once the roll-up is clustered by its key (each dimension's days together),
# as a CLUSTER (or a roll-up kept in that order) would leave it.
say "surveys: the results one at a time with survey_stats clustered by survey_stats_key"
t=$(clock)
psql_db -c "CLUSTER survey_stats USING survey_stats_key" -c "ANALYZE survey_stats"
CLUSTER_S=$(since "$t")
serve
CLUSTERED=()
for entry in "survey_results|$YEAR" "survey_results_month|$YEAR&group_by=month" \
    "survey_results_tier|$YEAR&group_by=tier" "survey_results_stage|$YEAR&group_by=lifecycle_stage"; do
    name=${entry%%|*}
    median=$(for i in $(seq 0 20); do
        curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" \
            "$BASE/v1/surveys/$SURVEY/results?${entry#*|}"
    done | tail -n +2 | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}')
    CLUSTERED+=("\"$name\": $median")
    say "one at a time, clustered: $name ${median} ms (median of 20)"
done
stop

SINGLE_JSON="{$(IFS=,; echo "${SINGLE[*]}")}"
CLUSTERED_JSON="{\"cluster_seconds\": $CLUSTER_S, $(IFS=,; echo "${CLUSTERED[*]}")}"
python3 - "$OUT" "$PGBENCH_TPS" "$PGBENCH_PCT" "$PGBENCH_HERE" "${RESULTS[@]}" <<PY
import json, re, sys
out, tps, pct, here = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] == "true"
p50, p99 = map(float, pct.split())
runs = [json.loads(line) for line in sys.argv[5:]]
for run in runs:
    run["ratio_to_pgbench"] = round(run["rps"] / tps, 4)
plans = open(f"{out}/survey_plans.txt").read()
requests = re.findall(r"^### (\S+)\s+\[([^,]+), ([0-9.]+) ms\]", plans, re.M)
dimensions = [line.split() for line in """$DIMENSIONS""".splitlines()]
surveys = {
    "commit": "$COMMIT",
    "survey_id": "$SURVEY",
    "respond_survey_id": "$RESPOND",
    "machine": {"cores": $(nproc), "load_average_at_start": "$LOAD_AT_START",
                "load_average_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)"},
    "seed": {
        "responses": $RESPONSES, "survey_stats_rows": $STATS_ROWS,
        "survey_stats_months_rows": $MONTH_ROWS,
        "customer_satisfaction_rows": $SATISFACTION, "detractors": $DETRACTORS,
        "cleanup_seconds": $CLEANUP_S, "api_seconds": $API_S,
        "responses_seconds": $RESPONSES_S, "survey_stats_seconds": $STATS_S,
        "customer_satisfaction_seconds": $SATISFACTION_S, "vacuum_analyze_seconds": $VACUUM_S,
        "sizes": $SIZES,
    },
    "checks": {
        "passed": True,
        "sum_n_of_response_rows": [{"dimension": d, "sum_n": int(s), "responses": int(r)}
                                   for d, s, r in dimensions],
        "api_overall_responses": $API_OVERALL,
        "api_by_month": dict(zip(["overall", "sum_of_groups", "groups"], map(int, "$API_MONTHS".split()))),
        "api_by_tier": dict(zip(["overall", "sum_of_groups", "groups"], map(int, "$API_TIERS".split()))),
        "posted_under_load": {"responses": $POSTED, "survey_stats_rows": $POSTED_ROWS,
                              "unfolded_at_the_end": $UNFOLDED, "folded_in_seconds": $FOLDED_S,
                              "rows_differing_from_recomputed": $DIFFERENT,
                              "month_rows_differing_from_days": $DIFFERENT_MONTHS},
    },
    "pgbench_select_only": {"tps": tps, "p50_ms": p50, "p99_ms": p99, "measured_in_this_stage": here},
    "single_client_median_ms": $SINGLE_JSON,
    "single_client_median_ms_clustered": $CLUSTERED_JSON,
    "lock_waits_while_posting": $WAITS,
    "api": runs,
    "plans": {
        "file": f"{out}/survey_plans.txt",
        "requests": [{"request": r, "index": v == "index", "slowest_statement_ms": float(ms)}
                     for r, v, ms in requests],
        "without_index": plans.count("NO INDEX"),
    },
}
json.dump(surveys, open(f"{out}/surveys.json", "w"), indent=2)
try:
    latest = json.load(open(f"{out}/latest.json"))
except (FileNotFoundError, ValueError):
    latest = {}
latest["surveys"] = surveys
json.dump(latest, open(f"{out}/latest.json", "w"), indent=2)
print(json.dumps(surveys, indent=2))
PY
