#!/usr/bin/env bash
# The import benchmark: one million customers from one CSV file, through the API
# (`POST /v1/imports/customers`) and through `psql \copy` into the same table with the same
# indexes, in the same run; then a 1 GB file (the same customers, each with ~1 KB of
# attributes) to show the service's memory stays flat. Prints rows/s, the ratio and the
# service's peak RSS, and writes bench/results/imports.json (imports_<rows>.json for another
# number of rows). Hostile files: bench/hostile.sh.
#
#   bench/imports.sh [rows=1000000]
#
# BENCH_IMPORT_BIG=0 leaves the 1 GB file out (the throughput figures alone).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-1000000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_IMPORT_DB:-rapport_import_bench}
PORT=${BENCH_PORT:-18081}
DATA=${BENCH_IMPORT_DATA:-/tmp/rapport-import-bench}
OUT=bench/results
RESULT_FILE=$OUT/imports.json
[ "$ROWS" = 1000000 ] || RESULT_FILE=$OUT/imports_$ROWS.json
RAPPORT=${CARGO_TARGET_DIR:-target}/release/rapport
SECRET=bench-secret-bench-secret-bench-secret-0123
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
psql_db() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

say "building (release)"
cargo build --release --locked -q

say "files: $ROWS customers, plain and with 1 KB of attributes each"
python3 bench/import_file.py "$ROWS" 0 > "$DATA/customers.csv"
BIG=${BENCH_IMPORT_BIG:-1}
[ "$BIG" = 0 ] || python3 bench/import_file.py "$ROWS" 1000 > "$DATA/customers-1gb.csv"
PLAIN_MB=$(du -m "$DATA/customers.csv" | cut -f1)
BIG_MB=0
[ "$BIG" = 0 ] || BIG_MB=$(du -m "$DATA/customers-1gb.csv" | cut -f1)

fresh() {
    psql "$PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
    DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate
}

say "reference: psql \\copy into customers (same indexes)"
fresh
T0=$(now)
psql_db -c "\\copy customers (id, kind, name, email, phone, external_id, source, region_type, lifecycle_stage) FROM '$DATA/customers.csv' WITH (FORMAT csv, HEADER true)"
T1=$(now)
COPY_S=$(echo "$T1 - $T0" | bc -l)
COPIED=$(psql_db -c "SELECT count(*) FROM customers")
say "psql \\copy: $COPIED rows in $COPY_S s"

serve() {
    DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn \
        RAPPORT_JWT_SECRET=$SECRET "$RAPPORT" serve &
    SERVER=$!
    for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
    TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role admin --ttl 4h 2>/dev/null)
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true' EXIT
rss_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
now_rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
# Starts a new peak: the kernel resets VmHWM to the current RSS.
reset_peak() { echo 5 > "/proc/$SERVER/clear_refs"; }

# POSTs a file (content type and extra curl arguments after it); prints seconds, then the
# report (a problem for a refused file).
post() {
    local file=$1 type=${2:-text/csv} t0 t1 report
    shift 2 || shift $#
    t0=$(now)
    # -T streams the file (--data-binary @file would read it into curl's memory first).
    report=$(curl -sS -X POST -T "$file" -H "Content-Type: $type" "$@" \
        -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/imports/customers")
    t1=$(now)
    echo "$(echo "$t1 - $t0" | bc -l)"
    echo "$report"
}

say "the API: POST /v1/imports/customers, the same file"
fresh
serve
IDLE_RSS=$(rss_mb)
readarray -t RESULT < <(post "$DATA/customers.csv")
API_S=${RESULT[0]}
API_REPORT=${RESULT[1]}
API_RSS=$(rss_mb)
stop
IMPORTED=$(psql_db -c "SELECT count(*) FROM customers")
say "API: $IMPORTED rows in $API_S s, peak RSS $API_RSS MB (idle $IDLE_RSS MB)"

BIG_S=0 BIG_REPORT=null BIG_RSS=0
if [ "$BIG" != 0 ]; then
    say "memory: the 1 GB file"
    fresh
    serve
    readarray -t RESULT < <(post "$DATA/customers-1gb.csv")
    BIG_S=${RESULT[0]}
    BIG_REPORT=${RESULT[1]}
    BIG_RSS=$(rss_mb)
    stop
fi

python3 - "$ROWS" "$COPY_S" "$COPIED" "$API_S" "$IMPORTED" "$API_REPORT" "$IDLE_RSS" "$API_RSS" \
    "$BIG_S" "$BIG_REPORT" "$BIG_RSS" "$PLAIN_MB" "$BIG_MB" \
    "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations || echo -dirty)" \
    <<'PY' | tee "$RESULT_FILE"
import json, sys
(rows, copy_s, copied, api_s, imported, api_report, idle, api_rss, big_s, big_report, big_rss,
 plain_mb, big_mb, commit) = sys.argv[1:]
rows, copied, imported = int(rows), int(copied), int(imported)
copy_rate = copied / float(copy_s)
api_rate = imported / float(api_s)
api_report, big_report = json.loads(api_report), json.loads(big_report)
print(json.dumps({
    "commit": commit,
    "rows": rows,
    "file_mb": int(plain_mb),
    "psql_copy": {"seconds": round(float(copy_s), 1), "rows_per_s": round(copy_rate)},
    "api_import": {"seconds": round(float(api_s), 1), "rows_per_s": round(api_rate),
                   "created": api_report["created"], "failed": api_report["failed"],
                   "service_rss_mb": {"idle": float(idle), "peak": float(api_rss)}},
    "ratio_api_to_copy": round(api_rate / copy_rate, 3),
    "one_gb_file": big_report and {"file_mb": int(big_mb), "seconds": round(float(big_s), 1),
                                   "created": big_report["created"],
                                   "service_peak_rss_mb": float(big_rss)},
}, indent=2))
PY
