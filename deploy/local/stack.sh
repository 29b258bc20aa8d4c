#!/usr/bin/env bash
# The local stack: the real Apache Kafka broker (single-node KRaft, deploy/local/kafka/) and the
# real ClickHouse engine (chDB) behind the ClickHouse HTTP interface.
#
#   stack.sh install            build/install what is missing (cached outside the clone)
#   stack.sh up [SERVICE...]    start services that are not running, wait until healthy
#   stack.sh down [SERVICE...]  stop services (TERM, then KILL after a grace period)
#   stack.sh status             print each service's health; exit 1 if any is down
#   stack.sh with CMD...        run CMD with the stack up; stop afterwards only what this started
#
# SERVICE is `kafka` or `clickhouse`. Everything is idempotent.
#
# Locations (override with the environment):
#   AUDITLOG_TOOLS_DIR  installed tools        ${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools
#   AUDITLOG_STACK_DIR  data, logs, pid files  <repo>/.stack
#   AUDITLOG_KAFKA_PORT / AUDITLOG_CLICKHOUSE_PORT   9092 / 8123
#   AUDITLOG_KAFKA_CONTROLLER_PORT                   the KRaft controller's port, 9093
#   AUDITLOG_KAFKA_HEAP                              the broker's JVM heap, 1g
#
# Topics are not made here: `auditlog migrate` creates them, as it would on a real cluster.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=${AUDITLOG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools}
stack=${AUDITLOG_STACK_DIR:-$repo/.stack}
kafka_port=${AUDITLOG_KAFKA_PORT:-9092}
kafka_controller_port=${AUDITLOG_KAFKA_CONTROLLER_PORT:-9093}
clickhouse_port=${AUDITLOG_CLICKHOUSE_PORT:-8123}

# Pinned versions: a cached install is reused only when its pins match (deploy/local/kafka/pom.xml,
# deploy/local/clickhouse/requirements.txt).
kafka_sh=$repo/deploy/local/kafka/kafka.sh
chdb_venv=$tools/chdb-venv
chdb_requirements=$repo/deploy/local/clickhouse/requirements.txt
# The tests' independent proof check (crates/auditlog-integrity/tests/independent_check.py).
auditor_venv=$tools/auditor-venv
auditor_requirements=$repo/crates/auditlog-integrity/tests/requirements.txt
export AUDITLOG_TOOLS_DIR=$tools

log() { printf 'stack: %s\n' "$*" >&2; }

# Makes the Python environment VENV from REQUIREMENTS, unless it is there with those pins.
install_venv() {
    local venv=$1 requirements=$2 what=$3
    local stamp=$venv/.requirements.sha256
    local wanted
    wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
        return
    fi
    log "installing $what's Python environment into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
}

install_chdb() {
    install_venv "$chdb_venv" "$chdb_requirements" "the chDB server"
}

install() {
    local service
    for service in $(services "$@"); do
        case $service in
        kafka) "$kafka_sh" install ;;
        clickhouse) install_chdb ;;
        *) log "unknown service $service (kafka, clickhouse)"; exit 2 ;;
        esac
    done
    # Not a service: what the tests need beside the stack.
    install_venv "$auditor_venv" "$auditor_requirements" "the independent proof check"
}

pid_file() { echo "$stack/run/$1.pid"; }
log_file() { echo "$stack/logs/$1.log"; }

running() {
    local pid_path
    pid_path=$(pid_file "$1")
    [[ -f $pid_path ]] && kill -0 "$(cat "$pid_path")" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

healthy() {
    case $1 in
    kafka) python3 "$repo/deploy/local/kafka/ping.py" "$kafka_port" >/dev/null 2>&1 ;;
    clickhouse) [[ $(curl -fsS --max-time 2 "http://127.0.0.1:$clickhouse_port/ping" 2>/dev/null) == "Ok." ]] ;;
    esac
}

start() {
    local service=$1
    if healthy "$service"; then
        return 1 # already up (maybe started elsewhere): not ours to stop
    fi
    mkdir -p "$stack/run" "$stack/logs" "$stack/data"
    local log_path
    log_path=$(log_file "$service")
    case $service in
    kafka)
        # Data in .stack/data/kafka, formatted on first start; the JVM's own stdout (start-up
        # failures before log4j is up) goes to the same log as the broker's log4j output.
        nohup "$kafka_sh" run --port "$kafka_port" --controller-port "$kafka_controller_port" \
            --dir "$stack/data/kafka" --log "$log_path" \
            >>"$log_path" 2>&1 </dev/null &
        ;;
    clickhouse)
        nohup "$chdb_venv/bin/python" "$repo/deploy/local/clickhouse/server.py" \
            --listen "127.0.0.1:$clickhouse_port" \
            --data-dir "$stack/data/clickhouse" \
            >>"$log_path" 2>&1 </dev/null &
        ;;
    esac
    echo $! >"$(pid_file "$service")"
    local waited=0
    until healthy "$service"; do
        if ! running "$service"; then
            tail -n 20 "$log_path" >&2
            log "$service exited during start-up; log: $log_path"
            exit 1
        fi
        if ((waited >= 120)); then
            log "$service not healthy after ${waited}s; log: $log_path"
            exit 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    log "$service up (pid $(cat "$(pid_file "$service")"), log $log_path)"
    return 0
}

stop() {
    local service=$1 pid_path pid
    pid_path=$(pid_file "$service")
    [[ -f $pid_path ]] || return 0
    pid=$(cat "$pid_path")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # A broker's controlled shutdown takes a few seconds; give it 30 before SIGKILL.
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        log "$service stopped"
    fi
    rm -f "$pid_path"
}

services() { if (($#)); then echo "$@"; else echo kafka clickhouse; fi; }

status() {
    local service failed=0
    for service in kafka clickhouse; do
        if healthy "$service"; then
            printf '%-11s healthy  (log %s)\n' "$service" "$(log_file "$service")"
        else
            printf '%-11s DOWN\n' "$service"
            failed=1
        fi
    done
    if healthy kafka; then
        printf '%-11s %s\n' "" "Kafka $(python3 "$repo/deploy/local/kafka/ping.py" "$kafka_port")"
    fi
    if healthy clickhouse; then
        printf '%-11s %s\n' "" "ClickHouse $(curl -fsS "http://127.0.0.1:$clickhouse_port/?query=SELECT+version()")"
    fi
    return $failed
}

command=${1:-status}
shift || true
case $command in
install) install "$@" ;;
up)
    install "$@"
    for service in $(services "$@"); do start "$service" || true; done
    status >/dev/null || { status; exit 1; }
    ;;
down)
    if (($# == 0)); then
        # The demo's processes (ingesters, API) first, so they stop while their services run.
        for pid_path in "$stack"/run/*.pid; do
            [[ -e $pid_path ]] || continue
            app=$(basename "$pid_path" .pid)
            [[ $app == kafka || $app == clickhouse ]] || stop "$app"
        done
    fi
    for service in $(services "$@"); do stop "$service"; done
    ;;
status) status ;;
with)
    install
    started=()
    for service in kafka clickhouse; do
        if start "$service"; then started+=("$service"); fi
    done
    cleanup() { for service in "${started[@]}"; do stop "$service"; done; }
    trap cleanup EXIT
    "$@"
    ;;
*)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
