#!/usr/bin/env bash
# Starts PgBouncer in transaction mode on port 6432 in front of the local test server
# (tests/support/pgbouncer.ini), for running the API tests through it:
#
#   tests/support/pgbouncer.sh start && \
#     RAPPORT_TEST_POOLER_URL=postgres://postgres@127.0.0.1:6432/postgres cargo test --test api
#   tests/support/pgbouncer.sh stop
#
# Uses $PGBOUNCER, else the first `pgbouncer` of PATH or /opt/pgbouncer/bin, and refuses
# (exit 3, saying why) one older than 1.21, which drops prepared statements between
# transactions. Debian 12 ships 1.18: build a newer one from its source (./configure
# --prefix=/opt/pgbouncer && make install; needs libevent-dev, libssl-dev, pkg-config).
# Needs root (PgBouncer runs as the postgres user). Its files go to PGBOUNCER_DIR.
set -euo pipefail

DIR=${PGBOUNCER_DIR:-/tmp/rapport-pgbouncer}
INI="$(cd "$(dirname "$0")" && pwd)/pgbouncer.ini"
as_postgres() { runuser -u postgres -- "$@"; }

stop() {
    if [ -f "$DIR/pgbouncer.pid" ]; then
        kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -f "$DIR/pgbouncer.pid" ] || break
            sleep 0.1
        done
    fi
}

case "${1:-start}" in
stop)
    stop
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac

BIN=${PGBOUNCER:-$(command -v pgbouncer || true)}
[ -n "$BIN" ] || BIN=/opt/pgbouncer/bin/pgbouncer
if [ ! -x "$BIN" ]; then
    echo "no PgBouncer found (PATH, /opt/pgbouncer/bin or \$PGBOUNCER)" >&2
    exit 3
fi
VERSION=$("$BIN" --version | head -n 1 | grep -Eo '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n 1)
MAJOR=${VERSION%%.*}
MINOR=$(echo "$VERSION" | cut -d. -f2)
if (( MAJOR < 1 || (MAJOR == 1 && MINOR < 21) )); then
    echo "PgBouncer $VERSION at $BIN is older than 1.21: it does not keep prepared statements in transaction mode" >&2
    exit 3
fi

stop
mkdir -p "$DIR"
cp "$INI" "$DIR/pgbouncer.ini"
printf 'logfile = %s\npidfile = %s\n' "$DIR/pgbouncer.log" "$DIR/pgbouncer.pid" >> "$DIR/pgbouncer.ini"
chown -R postgres "$DIR"
as_postgres "$BIN" -d "$DIR/pgbouncer.ini"
for _ in $(seq 1 50); do
    if psql -X -qAt -h 127.0.0.1 -p 6432 -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
        echo "PgBouncer $VERSION in transaction mode on 127.0.0.1:6432 ($BIN)"
        exit 0
    fi
    sleep 0.1
done
echo "PgBouncer did not answer on 127.0.0.1:6432; see $DIR/pgbouncer.log" >&2
exit 1
