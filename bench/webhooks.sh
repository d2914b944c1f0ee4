#!/usr/bin/env bash
# The webhook benchmark: how fast the service's worker delivers events, beside what the
# receiver itself takes in the same run, and how fast the event feed reads beside COPY.
#
#   1. References: a minimal receiver (bench/src/bin/receiver.rs, answers 204) under POSTs of
#      about 1 KB of JSON, one keep-alive connection sending back to back (the bound for one
#      ordered webhook) and 16 connections (bench/src/bin/hook_client.rs); and PostgreSQL's
#      durable commits in a row on one connection (pgbench, bench/webhooks/commit.sql).
#   2. A fresh database and the release server (RAPPORT_WEBHOOK_ALLOW_PRIVATE=true,
#      RAPPORT_WEBHOOK_INTERVAL=100ms). One webhook for customer.created, N customers
#      imported through the API (the import writes N events): the import's time, then the
#      time until the receiver has counted N deliveries.
#   3. That webhook off, eight new ones on the same receiver, another N customers: 8 N
#      deliveries.
#   4. Every webhook off, the feed: every event through GET /v1/events?limit=200 following
#      next_cursor, beside COPY of the same rows.
#
# Each delivery phase is checked against the database (deliveries by status, attempts, order
# of completion against queue and commit order) and against the receiver's count
# (duplicates). A phase waits at most BENCH_WEBHOOK_WAIT seconds (150) after its import and
# otherwise reports the rate it reached with "complete": false.
#
# Prints the figures and writes bench/results/webhooks.json; then EXPLAIN ANALYZEs the
# worker's claim and fan-out queries and the feed's on the loaded tables
# (bench/webhooks/plans.sql, in a transaction that is rolled back) into
# bench/results/webhook_plans.txt. Drops and recreates only its own database,
# rapport_webhook_bench, which it leaves behind for inspection; stops the server and the
# receiver it started on exit. Ports: BENCH_PORT (18082), BENCH_RECEIVER_PORT (18091).
#
#   bench/webhooks.sh [events=20000]
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

EVENTS=${1:-20000}
HOOKS=8
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=rapport_webhook_bench
PORT=${BENCH_PORT:-18082}
RPORT=${BENCH_RECEIVER_PORT:-18091}
REF_SECONDS=${BENCH_REF_SECONDS:-5}
# How long each delivery phase may run after its import; a phase cut short reports the rate
# it reached and "complete": false.
WAIT=${BENCH_WEBHOOK_WAIT:-150}
DATA=${BENCH_WEBHOOK_DATA:-/tmp/rapport-webhook-bench}
OUT=bench/results
RAPPORT=${CARGO_TARGET_DIR:-target}/release/rapport
TOOLS=bench/target/release
SECRET=bench-secret-bench-secret-bench-secret-0123
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
psql_db() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
secs() { printf "%.3f" "$(echo "$2 - $1" | bc -l)"; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
    (cd bench && CARGO_TARGET_DIR=target cargo build --release --locked -q --bin receiver --bin hook_client)
fi

SERVER=
RECEIVER=
cleanup() {
    for pid in $SERVER $RECEIVER; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

if curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
    say "something already answers on port $PORT (BENCH_PORT)"
    exit 1
fi

# The receiver, for the whole run; `count` reads how many requests it has answered.
"$TOOLS/receiver" --listen "127.0.0.1:$RPORT" > "$DATA/receiver.log" &
RECEIVER=$!
count() { curl -fsS "http://127.0.0.1:$RPORT/count"; }
for _ in $(seq 1 100); do count >/dev/null 2>&1 && break; sleep 0.1; done
count >/dev/null

# Waits until the receiver has counted $1 requests, or for $2 seconds at most; prints the time.
wait_for() {
    local target=$1 deadline=$(( $(date +%s) + $2 ))
    while [ "$(count)" -lt "$target" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.05
    done
    now
}

say "reference: the receiver under 1 KB JSON POSTs, ${REF_SECONDS}s each"
REF1=$("$TOOLS/hook_client" post --url "http://127.0.0.1:$RPORT/reference" --connections 1 \
    --duration "$REF_SECONDS" --body-bytes 1000)
say "1 connection: $REF1"
REF16=$("$TOOLS/hook_client" post --url "http://127.0.0.1:$RPORT/reference" --connections 16 \
    --duration "$REF_SECONDS" --body-bytes 1000)
say "16 connections: $REF16"

say "service: fresh database $DB, release server (webhooks to 127.0.0.1 allowed, idle poll 100ms)"
psql "$PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate

say "reference: durable commits in a row on one connection (pgbench, one-row UPDATE), ${REF_SECONDS}s"
psql_db -c "CREATE TABLE bench_commit (n bigint)" -c "INSERT INTO bench_commit VALUES (0)"
COMMITS=$(pgbench -n -c 1 -T "$REF_SECONDS" -f bench/webhooks/commit.sql "$PG/$DB" 2>/dev/null \
    | awk '/^tps/ {printf "%.0f", $3}')
psql_db -c "DROP TABLE bench_commit"
say "$COMMITS commits/s"
DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn RAPPORT_JWT_SECRET=$SECRET \
    RAPPORT_WEBHOOK_ALLOW_PRIVATE=true RAPPORT_WEBHOOK_INTERVAL=100ms "$RAPPORT" serve &
SERVER=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role admin --ttl 4h 2>/dev/null)
API="http://127.0.0.1:$PORT/v1"

# Creates a webhook for customer.created to the receiver's path /hook/$1; prints its id.
webhook() {
    curl -fsS -X POST "$API/webhooks" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"url\": \"http://127.0.0.1:$RPORT/hook/$1\", \"event_types\": [\"customer.created\"]}" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
# Turns the webhooks given off (their worker stops sending), then lets requests in flight land.
switch_off() {
    for id in "$@"; do
        curl -fsS -o /dev/null -X PATCH "$API/webhooks/$id" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/merge-patch+json' -d '{"active": false}'
    done
    sleep 1
}

# Writes N customers (name,email) tagged $1 to $DATA/$1.csv.
customers() {
    awk -v n="$EVENTS" -v tag="$1" 'BEGIN {
        print "name,email"
        for (i = 1; i <= n; i++) printf "Webhook Bench %s%d,wb-%s-%d@example.com\n", tag, i, tag, i
    }' > "$DATA/$1.csv"
}

# Imports $DATA/$1.csv, then waits for $2 more requests at the receiver (at most $WAIT s).
# Prints one JSON object: the import's seconds and report, what was delivered during the
# import, the seconds from the import's end until the last delivery arrived (or the wait ran
# out), and what had arrived then.
deliver() {
    local before t0 t1 at_end t2 report
    customers "$1"
    before=$(count)
    t0=$(now)
    report=$(curl -fsS -X POST -T "$DATA/$1.csv" -H 'Content-Type: text/csv' \
        -H "Authorization: Bearer $TOKEN" "$API/imports/customers")
    t1=$(now)
    at_end=$(( $(count) - before ))
    t2=$(wait_for $(( before + $2 )) "$WAIT")
    printf '{"import_s": %s, "import": %s, "delivered_during_import": %d, "drain_s": %s, "total_s": %s, "delivered": %d}\n' \
        "$(secs "$t0" "$t1")" "$report" "$at_end" "$(secs "$t1" "$t2")" "$(secs "$t0" "$t2")" \
        $(( $(count) - before ))
}

# Deliveries of the given webhooks: by status, attempts, the service's mean request latency,
# and order violations (a delivery completed before the one queued ahead of it, or queued
# out of the events' commit order).
check() {
    psql_db <<SQL
SELECT json_build_object(
  'succeeded', count(*) FILTER (WHERE d.status = 'succeeded'),
  'pending', count(*) FILTER (WHERE d.status = 'pending'),
  'failed', count(*) FILTER (WHERE d.status = 'failed'),
  'attempts', (SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries x ON x.id = a.delivery_id
               WHERE x.webhook_id IN ($1)),
  'mean_latency_ms', round(avg(d.last_latency_ms), 2),
  'out_of_order', (SELECT count(*) FROM (
      SELECT d.completed_at < lag(d.completed_at) OVER w AS early,
             (e.txid, e.position) < lag((e.txid, e.position)) OVER w AS misqueued
      FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.webhook_id IN ($1)
      WINDOW w AS (PARTITION BY d.webhook_id ORDER BY d.seq)) o WHERE early OR misqueued))
FROM webhook_deliveries d WHERE d.webhook_id IN ($1)
SQL
}

say "(a) one webhook, $EVENTS customers imported (at most ${WAIT}s after the import)"
FIRST=$(webhook a)
BEFORE=$(count)
A=$(deliver a "$EVENTS")
say "(a) $A"
switch_off "$FIRST"
A_RECEIVED=$(( $(count) - BEFORE )) # more than the deliveries that succeeded: duplicates
A_DB=$(check "'$FIRST'")
say "(a) received $A_RECEIVED; deliveries: $A_DB"
BODY=$(psql_db -c "SELECT round(avg(octet_length(jsonb_build_object('id', id, 'type', type,
    'occurred_at', occurred_at, 'object_type', object_type, 'object_id', object_id, 'data', data,
    'previous', previous, 'request_id', request_id)::text))) FROM events WHERE type = 'customer.created'")

say "(b) $HOOKS new webhooks (the first one off), another $EVENTS customers (at most ${WAIT}s after the import)"
HOOK_IDS=()
for i in $(seq 1 "$HOOKS"); do HOOK_IDS+=("$(webhook "b$i")"); done
IDS=$(printf "'%s'," "${HOOK_IDS[@]}")
IDS=${IDS%,}
BEFORE=$(count)
B=$(deliver b $(( HOOKS * EVENTS )))
say "(b) $B"
switch_off "${HOOK_IDS[@]}"
B_RECEIVED=$(( $(count) - BEFORE ))
B_DB=$(check "$IDS")
say "(b) received $B_RECEIVED; deliveries: $B_DB"

say "(c) the feed: every event, GET /v1/events?limit=200 (every webhook off)"
FEED=$("$TOOLS/hook_client" feed --base "http://127.0.0.1:$PORT" --token "$TOKEN" --limit 200)
say "(c) $FEED"
STORED=$(psql_db -c "SELECT count(*) FROM events")
COLUMNS="id, type, occurred_at, object_type, object_id, data, previous, request_id"
T0=$(now)
psql_db -c "COPY (SELECT $COLUMNS FROM events ORDER BY txid, position) TO STDOUT" > /dev/null
T1=$(now)
psql_db -c "COPY (SELECT data FROM events) TO '/dev/null'"
T2=$(now)
COPY_S=$(secs "$T0" "$T1")
COPY_DATA_S=$(secs "$T1" "$T2")
say "(c) COPY of the same $STORED rows in feed order to psql: $COPY_S s; COPY (SELECT data) TO '/dev/null' on the server: $COPY_DATA_S s"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=

say "plans of the worker's queries on the loaded tables (bench/results/webhook_plans.txt)"
psql_db -v caught_up="${HOOK_IDS[0]}" -f bench/webhooks/plans.sql > "$OUT/webhook_plans.txt"

python3 - "$EVENTS" "$HOOKS" "$REF1" "$REF16" "$A" "$A_DB" "$B" "$B_DB" "$A_RECEIVED" "$BODY" \
    "$FEED" "$STORED" "$COPY_S" "$COPY_DATA_S" "$COMMITS" "$B_RECEIVED" "$WAIT" <<'PY' | tee "$OUT/webhooks.json"
import json, sys
n, hooks = int(sys.argv[1]), int(sys.argv[2])
ref1, ref16, a, a_db, b, b_db = (json.loads(x) for x in sys.argv[3:9])
a_received, body = int(sys.argv[9]), int(float(sys.argv[10]))
feed, stored = json.loads(sys.argv[11]), int(sys.argv[12])
copy_s, copy_data_s = float(sys.argv[13]), float(sys.argv[14])
commits, b_received, wait = int(sys.argv[15]), int(sys.argv[16]), int(sys.argv[17])

def phase(run, db, received, expected, reference):
    done = run["delivered"] - run["delivered_during_import"]
    rate = done / run["drain_s"] if run["drain_s"] > 0 else 0
    return {
        "deliveries_expected": expected,
        "complete": run["delivered"] >= expected,
        "import": {"seconds": round(run["import_s"], 2), "created": run["import"]["created"],
                   "failed": run["import"]["failed"],
                   "rows_per_s": round(run["import"]["created"] / run["import_s"]),
                   "note": "each row also writes its customer.created event, in the same transaction"},
        "delivered_during_import": run["delivered_during_import"],
        "seconds_after_import": round(run["drain_s"], 2),
        "delivered_by_then": run["delivered"],
        "deliveries_per_s_after_import": round(rate),
        "ratio_to_reference": round(rate / reference["requests_per_s"], 4),
        "received_in_all": received,
        "database": db,
    }

print(json.dumps({
    "events_per_import": n,
    "event_body_bytes": body,
    "max_wait_s": wait,
    "reference": {"receiver_one_connection": ref1, "receiver_16_connections": ref16,
                  "postgres_commits_per_s_one_connection": commits},
    "one_webhook": phase(a, a_db, a_received, n, ref1),
    "eight_webhooks": phase(b, b_db, b_received, hooks * n, ref16),
    "feed": dict(feed, stored_events=stored,
                 copy_ordered_rows_to_client={"seconds": round(copy_s, 3),
                                              "rows_per_s": round(stored / copy_s)},
                 copy_data_to_dev_null_on_server={"seconds": round(copy_data_s, 3),
                                                  "rows_per_s": round(stored / copy_data_s)},
                 ratio_to_copy=round(feed["events_per_s"] / (stored / copy_s), 4)),
}, indent=2))
PY
