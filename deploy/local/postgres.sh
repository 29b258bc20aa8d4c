#!/usr/bin/env bash
# PostgreSQL for the query benchmark's anchor: Coder's audit log schema on Debian's postgresql,
# in a data directory and on a port of its own, apart from any system cluster.
#
#   postgres.sh install   install Debian's postgresql if missing (idempotent)
#   postgres.sh start     initdb on first use, start the server, wait until it accepts connections
#   postgres.sh stop      stop the server this directory runs (fast shutdown), if running
#   postgres.sh status    print whether it runs; exit 1 if not
#
# `make bench` runs `install`; the query benchmark (crates/auditlog/benches/query_api/) runs
# `start` and `stop` itself, so PostgreSQL runs only while it is measured.
#
# Locations (override with the environment):
#   AUDITLOG_STACK_DIR           data and logs      <repo>/.stack (the cluster is .stack/postgres)
#   AUDITLOG_BENCH_POSTGRES_PORT the port           55432
#
# The server runs as the `postgres` user (pg_ctl refuses root), trusts local connections on
# 127.0.0.1 only, and has a database `coder` owned by the `postgres` role.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
stack=${AUDITLOG_STACK_DIR:-$repo/.stack}
port=${AUDITLOG_BENCH_POSTGRES_PORT:-55432}
cluster=$stack/postgres
data=$cluster/data
log_file=$cluster/postgres.log
database=coder

log() { printf 'postgres: %s\n' "$*" >&2; }

# Debian installs the server binaries under a versioned directory, outside PATH.
bin_dir() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
    [[ -n $dir && -x $dir/pg_ctl ]] && echo "$dir"
}

install() {
    if bin_dir >/dev/null; then
        return
    fi
    log "installing Debian's postgresql"
    if [[ $(id -u) -ne 0 ]]; then
        log "need root for apt-get (or install the postgresql package by hand)"
        exit 1
    fi
    apt-get update -qq
    # The package's own cluster (postinst) is left alone: this script never uses it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# Runs a server binary as the owner of the data directory.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    local bin
    bin=$(bin_dir) || return 1
    [[ -f $data/PG_VERSION ]] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

init_cluster() {
    local bin=$1
    log "initdb into $data"
    mkdir -p "$cluster"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres:postgres "$cluster"
    fi
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # Settings of a modest dedicated server (Coder's docs leave tuning to the operator). The
    # bench loads with COPY into a table truncated in the same transaction, which
    # wal_level=minimal lets skip the WAL; queries are unaffected by it.
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
shared_buffers = 2GB
effective_cache_size = 8GB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 8GB
wal_level = minimal
max_wal_senders = 0
max_connections = 64
EOF
}

start() {
    install
    local bin
    bin=$(bin_dir)
    if running; then
        log "already running on 127.0.0.1:$port"
        return
    fi
    if [[ ! -f $data/PG_VERSION ]]; then
        init_cluster "$bin"
    fi
    as_owner "$bin/pg_ctl" -D "$data" -l "$log_file" -w -t 60 start >/dev/null
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$database"
    fi
    log "running on 127.0.0.1:$port (data $data, log $log_file)"
}

stop() {
    if ! running; then
        return
    fi
    as_owner "$(bin_dir)/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    log "stopped"
}

status() {
    if running; then
        echo "postgres    running  (127.0.0.1:$port, data $data)"
    else
        echo "postgres    down"
        return 1
    fi
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
