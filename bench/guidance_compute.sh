#!/usr/bin/env bash
# The analytics computation's statement before and after the relationship and loyalty
# guidance (issue 22): the same seeded data set (bench/analytics/seed_*.sql) in two
# databases, one migrated as main was (compute.sql of `BASE`, default main's 16edb45), one with this
# branch's migrations; each statement's backend CPU time (user + system, from
# /proc/<pid>/stat: wall times swing with the machine's load) measured `RUNS` times,
# alternating, on a first computation (every row written) and a second (no row changed).
# With `BEFORE` (a commit), that commit's statement runs too, on the new database, in the
# same rounds: before and after a change, measured side by side.
#
#   bench/guidance_compute.sh [customers=200000]     (REUSE=1: the databases as left)
#
# Needs a template database migrated with this branch, TEMPLATE (the tests'
# `rapport_tpl_…`, or a fresh database after `DATABASE_URL=… target/debug/rapport migrate`);
# the old side is it with the guidance's migrations reverted (their down.sql: the later
# migrations touch none of the tables the statement reads, and what they add, such as
# bigint_sum, the old statement does not use). Leaves guidance_bench_old and
# guidance_bench_new behind.
set -euo pipefail
CUSTOMERS=${1:-200000}
RUNS=${RUNS:-3}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BASE=${BASE:-16edb45}
: "${TEMPLATE:?a template database migrated with this branch}"
psql_at() { psql "$PG/$1" -qAtX -v ON_ERROR_STOP=1 "${@:2}"; }

for side in old new; do
    db=guidance_bench_$side
    if [ -n "${REUSE:-}" ]; then
        psql_at $db -c "TRUNCATE customer_analytics"
        continue
    fi
    psql_at postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
        -c "CREATE DATABASE $db TEMPLATE $TEMPLATE"
    if [ $side = old ]; then
        for m in migrations/2026-12-04-000031_*/ migrations/2026-12-04-000030_*/; do
            psql_at $db -f "$m/down.sql"
        done
    fi
    t0=$(psql_at $db -c "SELECT date_trunc('second', now())")
    for step in customers purchases interactions others; do
        psql_at $db -v customers="$CUSTOMERS" -v t0="$t0" -c "SET session_replication_role = replica" \
            -c "SET work_mem = '256MB'" -f "bench/analytics/seed_$step.sql" >/dev/null
    done
    psql_at $db -c "DROP TABLE bench_c" -c "VACUUM (ANALYZE)"
done

git show "$BASE:src/analytics/compute.sql" > /tmp/guidance_old_compute.sql
# The statement of a commit (`WORKTREE`: as checked out), its aspect sums spliced in.
statement_of() {
    local compute sums
    if [ "$1" = WORKTREE ]; then
        compute=$(cat src/analytics/compute.sql)
        sums=$(cat src/analytics/aspect_sums.sql)
    else
        compute=$(git show "$1:src/analytics/compute.sql")
        sums=$(git show "$1:src/analytics/aspect_sums.sql")
    fi
    printf '%s\n' "$compute" \
        | sed "s|/\*ASPECT_SUMS\*/|$(printf '%s\n' "$sums" | grep -v '^--' | tr '\n' ' ')|"
}
statement_of WORKTREE > /tmp/guidance_new_compute.sql
if [ -n "${BEFORE:-}" ]; then
    statement_of "$BEFORE" > /tmp/guidance_before_compute.sql
fi

# One computation's statement, as the service runs it, counted rather than sent: $1 the
# database, $2 the statement; prints the backend's CPU seconds (user + system) for it. The
# rows are read whole (`NOT (x IS NULL)`): a bare count(*) let PostgreSQL skip building
# the JSON of a statement without UNION ALL (main's), not of one with it. JIT off, as every
# session of the service (SESSION_SETTINGS, src/db/mod.rs): with it on, the compilation of
# the statement's expressions counted too, and the more expressions the more of it.
time_compute() {
    local sql out
    sql=$(sed 's/\$1::timestamptz/now()/g' "$2")
    out=$(mktemp)
    psql "$PG/$1" -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET work_mem = '256MB';
SET jit = off;
SELECT pg_backend_pid() AS pid \gset
\setenv PID :pid
\setenv OUT $out
\! awk '{ print \$14 + \$15 }' /proc/\$PID/stat >> \$OUT
SELECT count(*) FROM ($sql) x WHERE NOT (x IS NULL);
\! awk '{ print \$14 + \$15 }' /proc/\$PID/stat >> \$OUT
SQL
    awk -v hz="$(getconf CLK_TCK)" 'NR == 1 { a = $1 } NR == 2 { printf "%.2f\n", ($1 - a) / hz }' "$out"
    rm -f "$out"
}
# Writes a first computation's rows, so that the second computes against them.
store_rows() {
    local sql
    sql=$(sed 's/\$1::timestamptz/now()/g' "$2")
    psql_at "$1" -c "SET work_mem = '256MB'" -c "SET jit = off" -c "INSERT INTO customer_analytics
        SELECT * FROM json_populate_recordset(NULL::customer_analytics,
            (SELECT json_agg(figures::json) FROM ($sql) x WHERE figures IS NOT NULL))"
}

echo "customers: $CUSTOMERS, purchases: $(psql_at guidance_bench_new -c 'SELECT count(*) FROM purchases')"
for round in first second; do
    for run in $(seq "$RUNS"); do
        echo "$round old $(time_compute guidance_bench_old /tmp/guidance_old_compute.sql)"
        if [ -n "${BEFORE:-}" ]; then
            echo "$round before $(time_compute guidance_bench_new /tmp/guidance_before_compute.sql)"
        fi
        echo "$round new $(time_compute guidance_bench_new /tmp/guidance_new_compute.sql)"
    done
    if [ $round = first ]; then
        store_rows guidance_bench_old /tmp/guidance_old_compute.sql
        store_rows guidance_bench_new /tmp/guidance_new_compute.sql
        psql_at guidance_bench_old -c "VACUUM (ANALYZE) customer_analytics"
        psql_at guidance_bench_new -c "VACUUM (ANALYZE) customer_analytics"
    fi
done
