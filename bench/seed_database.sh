# Sourced by bench/run.sh and bench/scaling.sh: the bench data set in one database.
#
#   SEED=$(seed_database <database> <customers> <interactions> <purchases> <data dir>)
#
# Makes the database afresh (dropped, migrated by the service) and fills it with the seed
# tool, keeping the seed's figures in <data dir>/seed.json; with BENCH_SKIP_SEED and a
# seed.json from before, keeps the database seeded then, migrated to this build. Prints the
# seed's figures. Needs PG, RAPPORT (the service), TOOLS (the bench tools, default
# ./bench/target/release) and the caller's `say` and `psql_admin`.
seed_database() {
    local db=$1 customers=$2 interactions=$3 purchases=$4 data=$5
    if [ -n "${BENCH_SKIP_SEED:-}" ] && [ -s "$data/seed.json" ]; then
        say "database $db as seeded before"
        DATABASE_URL="$PG/$db" RAPPORT_LOG=warn "$RAPPORT" migrate >&2
        cat "$data/seed.json"
        return
    fi
    say "database $db with $customers customers"
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    DATABASE_URL="$PG/$db" RAPPORT_LOG=warn "$RAPPORT" migrate >&2
    "${TOOLS:-./bench/target/release}/seed" --database-url "$PG/$db" --customers "$customers" \
        --interactions "$interactions" --purchases "$purchases" --out "$data" |
        tee "$data/seed.json"
}
