#!/usr/bin/env bash
# Memory under hostile imports: the service's peak RSS while it takes a 1 GB file of good
# customers, then, beside it, hostile files: rows of ~1 MB that fail, rows over the 1 MiB row
# limit, 300 000 failing rows, five parallel downloads of their error
# file, and a 1 GiB gzip bomb. The peak is reset between stages (/proc/PID/clear_refs), so
# each figure is that stage's own. Writes bench/results/hostile.json, naming the commit.
#
#   bench/hostile.sh [rows-of-the-good-file=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-1000000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_HOSTILE_DB:-rapport_hostile_bench}
PORT=${BENCH_PORT:-18082}
DATA=${BENCH_IMPORT_DATA:-/tmp/rapport-import-bench}
OUT=bench/results
RAPPORT=${CARGO_TARGET_DIR:-target}/release/rapport
SECRET=bench-secret-bench-secret-bench-secret-0123
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
fi
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations || echo -dirty)

say "files: $ROWS customers with 1 KB of attributes each, and the hostile ones"
[ -s "$DATA/customers-1gb.csv" ] || python3 bench/import_file.py "$ROWS" 1000 > "$DATA/customers-1gb.csv"
python3 bench/hostile_file.py huge 60 | gzip -c > "$DATA/huge.ndjson.gz"
python3 bench/hostile_file.py failures 300000 > "$DATA/failures.csv"
python3 bench/hostile_file.py zeros 1024 | gzip -c > "$DATA/zeros.gz"

psql "$PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate
DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn \
    RAPPORT_JWT_SECRET=$SECRET "$RAPPORT" serve &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; psql "$PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true' EXIT
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role admin --ttl 4h 2>/dev/null)

rss_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
now_rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
# Starts a new peak: the kernel resets VmHWM to the current RSS.
reset_peak() { echo 5 > "/proc/$SERVER/clear_refs"; }

# POSTs a file (content type and extra curl arguments after it); prints seconds, then the
# report (a problem for a refused file).
post() {
    local file=$1 type=$2 t0 t1 report
    shift 2
    t0=$(now)
    # -T streams the file (--data-binary @file would read it into curl's memory first).
    report=$(curl -sS -X POST -T "$file" -H "Content-Type: $type" "$@" \
        -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/imports/customers")
    t1=$(now)
    echo "$(echo "$t1 - $t0" | bc -l)"
    echo "$report"
}

IDLE_RSS=$(now_rss_mb)
say "the 1 GB file"
readarray -t RESULT < <(post "$DATA/customers-1gb.csv" text/csv)
BIG_S=${RESULT[0]}; BIG_REPORT=${RESULT[1]}; BIG_RSS=$(rss_mb)
say "hostile files beside it"
HOSTILE_IDLE=$(now_rss_mb)
reset_peak
readarray -t RESULT < <(post "$DATA/huge.ndjson.gz" application/x-ndjson -H 'Content-Encoding: gzip')
HUGE_S=${RESULT[0]}; HUGE_REPORT=${RESULT[1]}; HUGE_RSS=$(rss_mb)
reset_peak
readarray -t RESULT < <(post "$DATA/failures.csv" text/csv)
FAIL_S=${RESULT[0]}; FAIL_REPORT=${RESULT[1]}; FAIL_RSS=$(rss_mb)
FAIL_ID=$(echo "$FAIL_REPORT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
reset_peak
T0=$(now)
DOWNLOADS=()
for n in 1 2 3 4 5; do
    curl -fsS -H "Authorization: Bearer $TOKEN" -o "$DATA/errors-$n.csv" \
        "http://127.0.0.1:$PORT/v1/imports/$FAIL_ID/errors.csv" &
    DOWNLOADS+=($!)
done
wait "${DOWNLOADS[@]}"
DOWNLOAD_S=$(echo "$(now) - $T0" | bc -l)
DOWNLOAD_RSS=$(rss_mb)
ERRORS_MB=$(du -m "$DATA/errors-1.csv" | cut -f1)
reset_peak
readarray -t RESULT < <(post "$DATA/zeros.gz" text/csv -H 'Content-Encoding: gzip')
BOMB_S=${RESULT[0]}; BOMB_REPORT=${RESULT[1]}; BOMB_RSS=$(rss_mb)
AFTER_RSS=$(now_rss_mb)
python3 - "$COMMIT" "$IDLE_RSS" "$BIG_S" "$BIG_REPORT" "$BIG_RSS" \
    "$(du -m "$DATA/customers-1gb.csv" | cut -f1)" "$HUGE_S" "$HUGE_REPORT" "$HUGE_RSS" \
    "$FAIL_S" "$FAIL_REPORT" "$FAIL_RSS" "$DOWNLOAD_S" "$DOWNLOAD_RSS" "$ERRORS_MB" \
    "$BOMB_S" "$BOMB_REPORT" "$BOMB_RSS" "$HOSTILE_IDLE" "$AFTER_RSS" \
    "$(du -k "$DATA/huge.ndjson.gz" | cut -f1)" "$(du -m "$DATA/failures.csv" | cut -f1)" \
    "$(du -k "$DATA/zeros.gz" | cut -f1)" <<'PY' | tee "$OUT/hostile.json"
import json, sys
(commit, idle, big_s, big, big_rss, big_mb, huge_s, huge, huge_rss, fail_s, fail, fail_rss,
 dl_s, dl_rss, errors_mb, bomb_s, bomb, bomb_rss, before, after, huge_kb, fail_mb,
 bomb_kb) = sys.argv[1:]
big, huge, fail, bomb = (json.loads(x) for x in (big, huge, fail, bomb))
counts = lambda r: {k: r.get(k) for k in ("received", "created", "failed")}
print(json.dumps({
    "commit": commit,
    "target": "each stage's peak RSS flat and under 200 MB",
    "rss_mb_idle": float(idle),
    "good_1gb_file": {"file": f"{big_mb} MB CSV, customers with 1 KB of attributes each",
                      "seconds": round(float(big_s), 1), **counts(big),
                      "service_peak_rss_mb": float(big_rss)},
    "rss_mb_before_hostile": float(before),
    "huge_rows": {"file": f"60 NDJSON rows: 20 good, 20 of ~1 MB failing, 20 over 1 MiB; "
                          f"{huge_kb} KB gzipped",
                  "seconds": round(float(huge_s), 1), **counts(huge),
                  "service_peak_rss_mb": float(huge_rss)},
    "many_failures": {"file": f"300000 CSV rows, each failing (an unknown kind, with a bad email and region behind it), {fail_mb} MB",
                      "seconds": round(float(fail_s), 1), **counts(fail),
                      "errors_total": fail.get("errors_total"),
                      "service_peak_rss_mb": float(fail_rss)},
    "five_error_file_downloads": {"error_file_mb": int(errors_mb),
                                  "seconds": round(float(dl_s), 1),
                                  "service_peak_rss_mb": float(dl_rss)},
    "gzip_bomb": {"file": f"1 GiB of zeros, {bomb_kb} KB gzipped",
                  "seconds": round(float(bomb_s), 2), "status": bomb.get("status"),
                  "detail": bomb.get("detail"), "service_peak_rss_mb": float(bomb_rss)},
    "rss_mb_after": float(after),
}, indent=2))
PY
