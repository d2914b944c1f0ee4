#!/usr/bin/env bash
# Makes sure a streaming replica of the local PostgreSQL primary runs, for the read-replica
# tests (tests/api/replicas.rs): a hot standby on REPLICA_PORT (default 5433), kept in
# REPLICA_DIR, built by pg_basebackup from PRIMARY_PORT (default 5432). Idempotent: a running
# replica that follows the primary is kept; a stopped one is started; a broken one (or none)
# is made afresh. Needs root (it acts as the postgres user) and prints the replica's port.
# `replica.sh stop` stops it at once (`-m immediate`, as a crash would), for the failover test.
set -euo pipefail

PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
VERSION=${PG_VERSION:-$(ls /usr/lib/postgresql | sort -n | tail -n 1)}
BIN=/usr/lib/postgresql/$VERSION/bin
REPLICA_DIR=${REPLICA_DIR:-/var/lib/postgresql/$VERSION/rapport-replica}
as_postgres() { runuser -u postgres -- "$@"; }
primary() { psql -X -qAt -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -c "$1"; }
replica() { psql -X -qAt -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -c "$1"; }

following() {
    [ "$(replica 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] || return 1
    # It replays what the primary writes: a fresh LSN arrives within 20 s.
    local target
    target=$(primary 'SELECT pg_current_wal_lsn()')
    for _ in $(seq 1 200); do
        [ "$(replica "SELECT pg_last_wal_replay_lsn() >= '$target'" 2>/dev/null)" = t ] && return 0
        replica 'SELECT pg_is_wal_replay_paused()' 2>/dev/null | grep -q t &&
            replica 'SELECT pg_wal_replay_resume()' >/dev/null
        sleep 0.1
    done
    return 1
}

if [ "${1:-}" = stop ]; then
    as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w stop >/dev/null
    exit 0
fi

# Replication connections from this machine, as the primary's other connections: trust.
HBA=$(primary 'SHOW hba_file')
if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$HBA"; then
    echo "host replication all 127.0.0.1/32 trust" >> "$HBA"
    primary 'SELECT pg_reload_conf()' >/dev/null
fi

# The replica streams through a slot, so the primary keeps the WAL it has not received yet
# (busy test runs recycle segments within seconds); never more than 2 GB of it, so that a
# replica left stopped cannot fill the primary's disk.
if [ "$(primary 'SHOW max_slot_wal_keep_size')" = -1 ]; then
    primary "ALTER SYSTEM SET max_slot_wal_keep_size = '2GB'" >/dev/null
    primary 'SELECT pg_reload_conf()' >/dev/null
fi

if following; then
    echo "$REPLICA_PORT"
    exit 0
fi
if [ -f "$REPLICA_DIR/PG_VERSION" ] && ! pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT"; then
    as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/replica.log" -w -t 60 start >/dev/null || true
    if following; then
        echo "$REPLICA_PORT"
        exit 0
    fi
fi
# Made afresh.
if [ -f "$REPLICA_DIR/postmaster.pid" ]; then
    as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
fi
rm -rf "$REPLICA_DIR"
primary "SELECT pg_drop_replication_slot('rapport_replica')
         FROM pg_replication_slots WHERE slot_name = 'rapport_replica'" >/dev/null
install -d -o postgres -g postgres -m 700 "$REPLICA_DIR"
# Other tests may end every session of the server (the outage tests do): try again then.
for attempt in 1 2 3 4 5; do
    if as_postgres "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres \
        -D "$REPLICA_DIR" -X stream -R -c fast -C -S rapport_replica; then
        break
    fi
    [ "$attempt" = 5 ] && exit 1
    primary "SELECT pg_drop_replication_slot('rapport_replica')
             FROM pg_replication_slots WHERE slot_name = 'rapport_replica'" >/dev/null || true
    rm -rf "$REPLICA_DIR"
    install -d -o postgres -g postgres -m 700 "$REPLICA_DIR"
    sleep 1
done
cat >> "$REPLICA_DIR/postgresql.auto.conf" <<CONF
port = $REPLICA_PORT
shared_buffers = '256MB'
max_wal_size = '256MB'
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = '5s'
CONF
# A Debian cluster keeps its configuration under /etc: point the copy at its own files.
cat > "$REPLICA_DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
hba_file = '$HBA'
unix_socket_directories = '/var/run/postgresql'
CONF
chown postgres:postgres "$REPLICA_DIR/postgresql.conf"
as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/replica.log" -w -t 120 start >/dev/null
following || { echo "the replica on port $REPLICA_PORT does not follow the primary" >&2; tail -n 20 "$REPLICA_DIR/replica.log" >&2; exit 1; }
echo "$REPLICA_PORT"
