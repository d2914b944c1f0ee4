#!/usr/bin/env bash
# A file of people at one address, imported with `on_duplicate` (issue 23): before the rules
# skipped a key that more than 20 customers hold, every pair of names at the address was
# compared (30 to 57 s per batch of 5 000 rows at one address). Imports ROWS individuals
# (default 5 000) with similar names at one street address into a fresh database, with
# `on_duplicate=skip`, twice: into the empty database (the rows against each other), then a
# second file of the same people with one letter changed in the name (against the stored
# ones as well). Prints each import's seconds and counts beside a plain import of the same
# file (no check) as the reference.
#
#   bench/crowded_key.sh [rows=5000]
#
# Needs PostgreSQL at BENCH_PG (default postgres://postgres@127.0.0.1:5432) and the release
# build (RAPPORT_BIN, default ${CARGO_TARGET_DIR:-target}/release/rapport).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-5000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=rapport_bench_crowd
PORT=${BENCH_PORT:-18092}
RAPPORT=${RAPPORT_BIN:-${CARGO_TARGET_DIR:-target}/release/rapport}
SECRET=bench-secret-bench-secret-bench-secret-0123
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT

psql "$PG/postgres" -qX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL="$PG/$DB" RAPPORT_LOG=warn "$RAPPORT" migrate >/dev/null
# Served from the scratch folder, where it writes its key file; `exec`, so that $SERVER is it.
BIN=$(realpath "$RAPPORT")
(cd "$TMP" && DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_RATE_LIMIT=off \
    RAPPORT_LOG=warn RAPPORT_JWT_SECRET=$SECRET exec "$BIN" serve 2>/dev/null) &
SERVER=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role admin --ttl 1h 2>/dev/null)

people() {
    awk -v n="$ROWS" -v surname="$1" -v street="$2" 'BEGIN { for (k = 1; k <= n; k++)
        printf "{\"name\": \"Mieter %05d %s\", \"address\": {\"line1\": \"%s\", \"postal_code\": \"10178\"}}\n",
            k, surname, street }'
}
people Schmidt "Alexanderplatz 1" > "$TMP/first.ndjson"
people Schmid "Alexanderplatz 1" > "$TMP/second.ndjson"
people Schmidt "Karl-Marx-Allee 2" > "$TMP/plain.ndjson"

import() {
    local start end report
    start=$(date +%s.%N)
    report=$(curl -sS -X POST "http://127.0.0.1:$PORT/v1/imports/customers$1" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' -T "$2")
    end=$(date +%s.%N)
    printf '%-58s %6.2f s  %s\n' "$3" "$(echo "$end - $start" | bc -l)" \
        "$(echo "$report" | python3 -c 'import json, sys; r = json.load(sys.stdin)
print({k: r.get(k) for k in ("received", "created", "unchanged", "failed", "detail")})')"
}
echo "$ROWS people at one address ($(git rev-parse --short HEAD)):"
import "" "$TMP/plain.ndjson" "reference: the same file at another address, no check"
import "?on_duplicate=skip" "$TMP/first.ndjson" "on_duplicate=skip into an empty address"
import "?on_duplicate=skip" "$TMP/second.ndjson" "on_duplicate=skip, $ROWS more at the address"
[ -n "${BENCH_KEEP:-}" ] || psql "$PG/postgres" -qX -c "DROP DATABASE $DB WITH (FORCE)"
