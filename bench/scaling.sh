#!/usr/bin/env bash
# Past one machine (issue 24): the main scenarios of bench/run.sh (get, list, search, create,
# purchase) in three setups, beside PostgreSQL's own limit, in one run:
#
#   direct     DATABASE_URL names the primary (as bench/run.sh)
#   pgbouncer  DATABASE_URL goes through PgBouncer in transaction mode (tests/support/pgbouncer.sh,
#              port 6432; RAPPORT_DB_POOLER=transaction, jobs and migrations direct)
#   replica    the primary direct, RAPPORT_READ_DATABASE_URLS naming a streaming replica
#              (tests/support/replica.sh, port 5433): lists and search read there
#
# The references: `pgbench -S -M prepared` and pgbench's TPC-B-like transaction (scale 10, own
# database), direct and through PgBouncer, at the same concurrency and duration. The replica is
# stopped while the references and the first two setups run (so that they are measured as
# bench/run.sh measures them) and follows the primary for the third, during every scenario of
# which the primary's view of its lag (pg_stat_replication: replay_lag, and the bytes sent but
# not replayed) is sampled every 0.5 s; /metrics' rapport_reads_total before and after each
# scenario gives the share of the reads the replica served.
#
#   bench/scaling.sh [customers=200000] [seconds-per-scenario=10]
#
# Prints a table and writes bench/results/scaling.json (with the commit it ran on). Its own
# database, rapport_bench_scaling, seeded by the seed tool (2 interactions and 4 purchases a
# customer) and migrated by the service (`rapport migrate`) as bench/run.sh does, but with the
# duplicate candidates backfilled after the load and the points ledger's indexes made again
# over its partitions (see below); BENCH_SKIP_SEED=1 measures the one seeded before. The pooled sessions get the request limits
# from the database's defaults (ALTER DATABASE … SET, as the tests do; PgBouncer's connect_query
# in production). Needs root (the replica and PgBouncer run as the postgres user), psql and
# pgbench at BENCH_PG (default postgres://postgres@127.0.0.1:5432) and PgBouncer 1.21+. The
# service and the tools are built in release unless BENCH_SKIP_BUILD is set (RAPPORT_BIN names
# another build of the service, BENCH_TOOLS the directory of the seed and load tools). PgBouncer
# is stopped at the end if this script started it, the replica if it was not running before.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${1:-200000}
DURATION=${2:-10}
CONCURRENCY=${CONCURRENCY:-16}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
POOLER_PORT=6432
PG_HOST=$(echo "$PG" | sed -E 's|^postgres(ql)?://([^@/]*@)?([^:/]*).*|\3|')
REPLICA_PG=$(echo "$PG" | sed -E "s|:[0-9]+\$|:$REPLICA_PORT|")
POOLED_PG=$(echo "$PG" | sed -E "s|:[0-9]+\$|:$POOLER_PORT|")
DB=rapport_bench_scaling
PGBENCH_DB=rapport_pgbench_scaling
PORT=${BENCH_PORT:-18082}
METRICS_PORT=$((PORT + 1))
DATA=bench/data/scaling
OUT=bench/results
RAPPORT=${RAPPORT_BIN:-${CARGO_TARGET_DIR:-target}/release/rapport}
TOOLS=${BENCH_TOOLS:-./bench/target/release}
SECRET=bench-secret-bench-secret-bench-secret-0123
SCENARIOS=(get list search create purchase)
PG_VERSION=$(basename "$(printf '%s\n' /usr/lib/postgresql/*/ | sort -V | tail -n 1)")
REPLICA_DIR=${REPLICA_DIR:-/var/lib/postgresql/$PG_VERSION/rapport-replica}
mkdir -p "$DATA" "$OUT"

say() { printf '==> %s\n' "$*" >&2; }
psql_admin() { psql "$PG/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
q() { psql "$PG/$DB" -qAtX -v ON_ERROR_STOP=1 "$@"; }
tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building (release)"
    cargo build --release --locked -q
    (cd bench && CARGO_TARGET_DIR=target cargo build --release -q)
fi
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations || echo -dirty)

# What runs already stays as it is at the end.
replica_up() { pg_isready -q -h "$PG_HOST" -p "$REPLICA_PORT"; }
pooler_up() { psql "$POOLED_PG/postgres" -qAtX -c 'SELECT 1' >/dev/null 2>&1; }
REPLICA_WAS_UP=; replica_up && REPLICA_WAS_UP=1
POOLER_WAS_UP=; pooler_up && POOLER_WAS_UP=1
stop_replica() {
    replica_up || return 0
    runuser -u postgres -- "/usr/lib/postgresql/$PG_VERSION/bin/pg_ctl" -D "$REPLICA_DIR" \
        -m fast -w stop >/dev/null
}

SERVER=
SAMPLER=
stop() {
    [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
    SERVER=
}
finish() {
    stop
    [ -z "$SAMPLER" ] || { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; }
    [ -n "$POOLER_WAS_UP" ] || tests/support/pgbouncer.sh stop || true
    [ -n "$REPLICA_WAS_UP" ] || stop_replica || true
}
trap finish EXIT

# shellcheck source=bench/seed_database.sh
source bench/seed_database.sh
SEED=$(seed_database "$DB" "$CUSTOMERS" 2 4 "$DATA")
say "seed: $SEED"
DB_SIZE=$(psql_admin -c "SELECT pg_database_size('$DB')")
# Behind a transaction-mode pooler the service sets nothing on its request sessions: they
# start with the request limits from the server (the defaults of RAPPORT_DB_STATEMENT_TIMEOUT
# and RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT; startup refuses, naming each, if they differ).
# The same values the service sets on its direct sessions itself.
psql_admin -c "ALTER DATABASE $DB SET pg_trgm.word_similarity_threshold = '0.4'" \
    -c "ALTER DATABASE $DB SET jit = 'off'" \
    -c "ALTER DATABASE $DB SET statement_timeout = '30000'" \
    -c "ALTER DATABASE $DB SET idle_in_transaction_session_timeout = '60000'"

# The references and the first two setups run without the replica replaying beside them.
stop_replica
[ -n "$POOLER_WAS_UP" ] || tests/support/pgbouncer.sh start >&2

say "pgbench references (scale 10, $CONCURRENCY connections, ${DURATION}s each)"
psql_admin -c "DROP DATABASE IF EXISTS $PGBENCH_DB WITH (FORCE)" -c "CREATE DATABASE $PGBENCH_DB"
pgbench -q -i -s 10 "$PG/$PGBENCH_DB" >/dev/null 2>&1
psql "$PG/$PGBENCH_DB" -qX -c 'VACUUM ANALYZE' >/dev/null
# One pgbench run: "tps p50_ms p99_ms" (the latencies from its per-transaction log).
pgbench_run() {
    local url=$1
    shift
    rm -f /tmp/rapport_scaling_pgbench_log*
    local out
    out=$(pgbench -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" -l \
        --log-prefix=/tmp/rapport_scaling_pgbench_log "$@" "$url" 2>/dev/null)
    printf '%s %s\n' "$(echo "$out" | tps)" "$(cat /tmp/rapport_scaling_pgbench_log* | awk '{print $3}' |
        sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')"
}
REF_SELECT=$(pgbench_run "$PG/$PGBENCH_DB" -S)
say "pgbench -S, direct: $REF_SELECT (tps p50 p99)"
REF_TPCB=$(pgbench_run "$PG/$PGBENCH_DB")
say "pgbench TPC-B-like, direct: $REF_TPCB"
REF_SELECT_POOLED=$(pgbench_run "$POOLED_PG/$PGBENCH_DB" -S)
say "pgbench -S, through PgBouncer: $REF_SELECT_POOLED"
REF_TPCB_POOLED=$(pgbench_run "$POOLED_PG/$PGBENCH_DB")
say "pgbench TPC-B-like, through PgBouncer: $REF_TPCB_POOLED"

# The service with DATABASE_URL and the setup's own variables (NAME=value ...).
serve() {
    env DATABASE_URL="$PG/$DB" RAPPORT_BIND="127.0.0.1:$PORT" RAPPORT_METRICS_BIND="127.0.0.1:$METRICS_PORT" \
        RAPPORT_RATE_LIMIT=off RAPPORT_LOG=warn RAPPORT_JWT_SECRET=$SECRET RAPPORT_DB_POOL_SIZE=16 \
        RAPPORT_SHUTDOWN_DRAIN=0s RAPPORT_SHUTDOWN_TIMEOUT=5s "$@" "$RAPPORT" serve &
    SERVER=$!
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.1
    done
    echo "rapport did not start" >&2
    exit 1
}
TOKEN=$(RAPPORT_JWT_SECRET=$SECRET DATABASE_URL="$PG/$DB" "$RAPPORT" token --role manager --ttl 2h 2>/dev/null)
# rapport_reads_total by who served: "primary replica".
reads() {
    curl -fs "http://127.0.0.1:$METRICS_PORT/metrics" | awk '
        /^rapport_reads_total\{served_by="primary"\}/ {p = $2}
        /^rapport_reads_total\{served_by="replica/ {r += $2}
        END {printf "%d %d", p, r}'
}
# The replica's lag as the primary sees it, every 0.5 s: "replay_lag_ms lag_bytes" lines
# (replay_lag is NULL once the replica has caught up and nothing more is written: 0).
sample_lag() {
    psql "$PG/postgres" -qAtX -F ' ' >"$1" 2>/dev/null <<'SQL' &
SELECT coalesce(round(extract(epoch FROM r.replay_lag)::numeric * 1000, 2), 0),
       coalesce(pg_wal_lsn_diff(r.sent_lsn, r.replay_lsn), 0)
FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
WHERE s.slot_name = 'rapport_replica' \watch 0.5
SQL
    SAMPLER=$!
}

RESULTS=()
# One setup: every scenario, as JSON lines with the setup's name (and, for the replica, the
# reads each side served and the lag samples' file).
measure() {
    local setup=$1 scenario line before after
    for scenario in "${SCENARIOS[@]}"; do
        say "$setup: $scenario ($CONCURRENCY connections, ${DURATION}s)"
        before=$(reads)
        [ "$setup" != replica ] || sample_lag "/tmp/rapport_scaling_lag_$scenario.txt"
        line=$("$TOOLS/load" --base "http://127.0.0.1:$PORT" --token "$TOKEN" --scenario "$scenario" \
            --data "$DATA" --concurrency "$CONCURRENCY" --duration "$DURATION")
        if [ "$setup" = replica ]; then
            kill "$SAMPLER" 2>/dev/null || true
            wait "$SAMPLER" 2>/dev/null || true
            SAMPLER=
        fi
        after=$(reads)
        read -r p0 r0 <<<"$before"
        read -r p1 r1 <<<"$after"
        line="${line%\}}, \"setup\": \"$setup\", \"reads_primary\": $((p1 - p0)), \"reads_replica\": $((r1 - r0))"
        [ "$setup" != replica ] || line="$line, \"lag_file\": \"/tmp/rapport_scaling_lag_$scenario.txt\""
        line="$line}"
        say "$line"
        RESULTS+=("$line")
    done
}

serve
measure direct
stop

serve DATABASE_URL="$POOLED_PG/$DB" RAPPORT_DB_POOLER=transaction RAPPORT_DIRECT_DATABASE_URL="$PG/$DB"
measure pgbouncer
stop

say "replica on port $REPLICA_PORT (tests/support/replica.sh: it catches up first)"
tests/support/replica.sh >/dev/null
serve RAPPORT_READ_DATABASE_URLS="$REPLICA_PG/$DB"
measure replica
stop

python3 - "$COMMIT" "$CONCURRENCY" "$DURATION" "$SEED" "$DB_SIZE" "$REF_SELECT" "$REF_TPCB" \
    "$REF_SELECT_POOLED" "$REF_TPCB_POOLED" "${RESULTS[@]}" <<'PY' > "$OUT/scaling.json"
import json, statistics, sys
commit, connections, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seed, db_bytes = json.loads(sys.argv[4]), int(sys.argv[5])
def ref(text):
    tps, p50, p99 = map(float, text.split())
    return {"tps": tps, "p50_ms": p50, "p99_ms": p99}
select, tpcb, select_pooled, tpcb_pooled = (ref(a) for a in sys.argv[6:10])
runs = [json.loads(line) for line in sys.argv[10:]]
def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else None
for run in runs:
    write = run["scenario"] in ("create", "purchase")
    run["reference"] = "pgbench_tpcb_like" if write else "pgbench_select_only"
    run["ratio_to_pgbench"] = round(run["rps"] / (tpcb if write else select)["tps"], 3)
    if run["setup"] == "pgbouncer":
        pooled = tpcb_pooled if write else select_pooled
        run["ratio_to_pgbench_through_pgbouncer"] = round(run["rps"] / pooled["tps"], 3)
    served = run.pop("reads_primary") + run["reads_replica"]
    if run["setup"] == "replica":
        run["replica_reads"] = run.pop("reads_replica")
        run["replica_share_of_reads"] = round(run["replica_reads"] / served, 3) if served else None
        samples = [tuple(map(float, line.split())) for line in open(run.pop("lag_file"))
                   if line.strip()]
        lag_ms, lag_bytes = [s[0] for s in samples], [s[1] for s in samples]
        run["replica_lag"] = {
            "samples": len(samples),
            "replay_lag_ms": {"p50": pct(lag_ms, 0.5), "max": max(lag_ms, default=None)},
            "lag_bytes": {"p50": pct(lag_bytes, 0.5), "max": max(lag_bytes, default=None)},
        }
    else:
        run.pop("reads_replica")
print(json.dumps({
    "commit": commit, "connections": connections, "seconds_per_scenario": seconds,
    "data": {"seed": seed, "database_bytes": db_bytes},
    "pgbench_select_only": select, "pgbench_tpcb_like": tpcb,
    "pgbench_select_only_through_pgbouncer": select_pooled,
    "pgbench_tpcb_like_through_pgbouncer": tpcb_pooled,
    "api": runs}, indent=2))
PY

python3 - "$OUT/scaling.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"commit {r['commit']}, {r['data']['seed'].get('customers')} customers, "
      f"{r['data']['database_bytes'] / 2**30:.2f} GiB, {r['connections']} connections, "
      f"{r['seconds_per_scenario']} s a scenario")
for name in ("pgbench_select_only", "pgbench_tpcb_like", "pgbench_select_only_through_pgbouncer",
             "pgbench_tpcb_like_through_pgbouncer"):
    x = r[name]
    print(f"{name:40} {x['tps']:9.0f} tps  p50 {x['p50_ms']:6.2f}  p99 {x['p99_ms']:6.2f} ms")
print(f"{'scenario':9} {'setup':10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} "
      f"{'errors':>6} {'replica':>8} {'lag p50/max ms':>15} {'lag p50/max kB':>16}")
for run in sorted(r["api"], key=lambda run: ["get", "list", "search", "create", "purchase"].index(run["scenario"])):
    share = run.get("replica_share_of_reads")
    lag = run.get("replica_lag")
    lag_ms = f"{lag['replay_lag_ms']['p50']}/{lag['replay_lag_ms']['max']}" if lag and lag["samples"] else ""
    lag_kb = (f"{lag['lag_bytes']['p50'] / 1024:.0f}/{lag['lag_bytes']['max'] / 1024:.0f}"
              if lag and lag["samples"] else "")
    print(f"{run['scenario']:9} {run['setup']:10} {run['rps']:7.0f} {run['p50_ms']:7.2f} "
          f"{run['p99_ms']:7.2f} {run['ratio_to_pgbench']:6.3f} {run['errors']:6} "
          f"{'' if share is None else f'{share:.0%}':>8} {lag_ms:>15} {lag_kb:>16}")
PY
say "written to $OUT/scaling.json"
