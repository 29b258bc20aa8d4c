#!/usr/bin/env bash
# The local stack: the real Apache Kafka broker (KRaft, one node or a cluster of three,
# deploy/local/kafka/) and the real ClickHouse engine (chDB) behind the ClickHouse HTTP interface.
#
#   stack.sh install            build/install what is missing (cached outside the clone)
#   stack.sh up [SERVICE...]    start services that are not running, wait until healthy
#   stack.sh down [SERVICE...]  stop services (TERM, then KILL after a grace period)
#   stack.sh status             print each service's health; exit 1 if any is down
#   stack.sh with CMD...        run CMD with the stack up; stop afterwards only what this started
#
# SERVICE is `kafka`, `clickhouse`, or one of the streaming destinations, `s3` (SeaweedFS's S3
# server, deploy/local/seaweedfs.sh; `seaweedfs` is the same) and `opensearch`
# (deploy/local/opensearch.sh). Without SERVICE: kafka and clickhouse, and the streaming
# destinations too when AUDITLOG_STACK_STREAMING=1. Everything is idempotent.
#
# Locations (override with the environment):
#   AUDITLOG_TOOLS_DIR  installed tools        ${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools
#   AUDITLOG_STACK_DIR  data, logs, pid files  <repo>/.stack
#   AUDITLOG_KAFKA_PORT / AUDITLOG_CLICKHOUSE_PORT   9092 / 8123
#   AUDITLOG_KAFKA_CONTROLLER_PORT                   the KRaft controller's port, 9093
#   AUDITLOG_S3_PORT / AUDITLOG_OPENSEARCH_PORT      8333 / 9200
#   AUDITLOG_S3_ACCESS_KEY / AUDITLOG_S3_SECRET_KEY  the S3 server's one key pair (every request
#                                                    must be signed with it), auditlog-local /
#                                                    auditlog-local-secret
#   AUDITLOG_KAFKA_HEAP                              each broker's JVM heap, 1g (512m with 3 nodes)
#   AUDITLOG_KAFKA_NODES                             1, or 3 for a three-node KRaft cluster: node N
#       listens on the Kafka port + 2(N-1) and its controller on the controller port + 2(N-1)
#       (9092/9093, 9094/9095, 9096/9097), data in .stack/data/kafka-cluster/node-N; the
#       one-node data (.stack/data/kafka) is kept apart. `down` and `status` cover every node.
#
# Topics are not made here: `auditlog migrate` creates them, as it would on a real cluster.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=${AUDITLOG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools}
stack=${AUDITLOG_STACK_DIR:-$repo/.stack}
kafka_port=${AUDITLOG_KAFKA_PORT:-9092}
kafka_controller_port=${AUDITLOG_KAFKA_CONTROLLER_PORT:-9093}
clickhouse_port=${AUDITLOG_CLICKHOUSE_PORT:-8123}
s3_port=${AUDITLOG_S3_PORT:-8333}
opensearch_port=${AUDITLOG_OPENSEARCH_PORT:-9200}
kafka_nodes=${AUDITLOG_KAFKA_NODES:-1}
[[ $kafka_nodes =~ ^[1-9]$ ]] || { echo "stack: AUDITLOG_KAFKA_NODES must be 1 to 9, not $kafka_nodes" >&2; exit 2; }
if ((kafka_nodes > 1)); then export AUDITLOG_KAFKA_HEAP=${AUDITLOG_KAFKA_HEAP:-512m}; fi

# Pinned versions: a cached install is reused only when its pins match (deploy/local/kafka/pom.xml,
# deploy/local/clickhouse/requirements.txt).
kafka_sh=$repo/deploy/local/kafka/kafka.sh
seaweedfs_sh=$repo/deploy/local/seaweedfs.sh
opensearch_sh=$repo/deploy/local/opensearch.sh
chdb_venv=$tools/chdb-venv
chdb_requirements=$repo/deploy/local/clickhouse/requirements.txt
# The tests' independent proof check (crates/auditlog-integrity/tests/independent_check.py).
auditor_venv=$tools/auditor-venv
auditor_requirements=$repo/crates/auditlog-integrity/tests/requirements.txt
# The tests' independent OCSF validator (tests/ocsf/validate.py): the OCSF schemas come inside
# the pinned package, so validating needs no network.
ocsf_venv=$tools/ocsf-venv
ocsf_requirements=$repo/tests/ocsf/requirements.txt
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
        s3) "$seaweedfs_sh" install ;;
        opensearch) "$opensearch_sh" install ;;
        *) log "unknown service $service (kafka, clickhouse, s3, opensearch)"; exit 2 ;;
        esac
    done
    # Not a service: what the tests need beside the stack.
    install_venv "$auditor_venv" "$auditor_requirements" "the independent proof check"
    install_venv "$ocsf_venv" "$ocsf_requirements" "the independent OCSF validator"
}

pid_file() { echo "$stack/run/$1.pid"; }
log_file() { echo "$stack/logs/$1.log"; }

running() {
    local pid_path
    pid_path=$(pid_file "$1")
    [[ -f $pid_path ]] && kill -0 "$(cat "$pid_path")" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Node N of the Kafka cluster (1 when there is one node): its pid file's name and its ports.
kafka_node_name() { if (($1 == 1)); then echo kafka; else echo "kafka-$1"; fi; }
kafka_node_port() { echo $((kafka_port + 2 * ($1 - 1))); }
kafka_node_controller_port() { echo $((kafka_controller_port + 2 * ($1 - 1))); }
# The nodes this stack may have started, whatever AUDITLOG_KAFKA_NODES says now.
kafka_node_names() {
    local pid_path
    echo kafka
    for pid_path in "$stack"/run/kafka-*.pid; do
        if [[ -e $pid_path ]]; then basename "$pid_path" .pid; fi
    done
}

# Healthy means node 1 answers and lists every node of the configured cluster.
kafka_healthy() {
    local answer
    answer=$(python3 "$repo/deploy/local/kafka/ping.py" "$kafka_port" 2>/dev/null) || return 1
    [[ $answer =~ ,\ ([0-9]+)\ broker ]] && ((BASH_REMATCH[1] >= kafka_nodes))
}

healthy() {
    case $1 in
    kafka) kafka_healthy ;;
    clickhouse) [[ $(curl -fsS --max-time 2 "http://127.0.0.1:$clickhouse_port/ping" 2>/dev/null) == "Ok." ]] ;;
    s3) "$seaweedfs_sh" ping "$s3_port" "$stack/data/s3" ;;
    opensearch) "$opensearch_sh" ping "$opensearch_port" ;;
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
        if ((kafka_nodes > 1)); then
            start_kafka_cluster
            return 0
        fi
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
    s3)
        nohup "$seaweedfs_sh" run --port "$s3_port" --dir "$stack/data/s3" \
            --access-key "${AUDITLOG_S3_ACCESS_KEY:-auditlog-local}" \
            --secret-key "${AUDITLOG_S3_SECRET_KEY:-auditlog-local-secret}" \
            >>"$log_path" 2>&1 </dev/null &
        ;;
    opensearch)
        nohup "$opensearch_sh" run --port "$opensearch_port" --dir "$stack/data/opensearch" \
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

# The nodes of a Kafka cluster start together (a quorum needs a majority before any of them
# answers as a broker), with one cluster id kept beside their data.
start_kafka_cluster() {
    local dir=$stack/data/kafka-cluster node name voters="" cluster_id
    if python3 "$repo/deploy/local/kafka/ping.py" "$kafka_port" >/dev/null 2>&1 && ! running kafka-2; then
        log "a one-node Kafka answers on $kafka_port: stop it first (stack.sh down kafka); its data stays"
        exit 1
    fi
    mkdir -p "$dir"
    [[ -f $dir/cluster-id ]] || head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' >"$dir/cluster-id"
    cluster_id=$(cat "$dir/cluster-id")
    for node in $(seq 1 "$kafka_nodes"); do
        voters+=${voters:+,}$node@127.0.0.1:$(kafka_node_controller_port "$node")
    done
    for node in $(seq 1 "$kafka_nodes"); do
        name=$(kafka_node_name "$node")
        running "$name" && continue
        nohup "$kafka_sh" run --port "$(kafka_node_port "$node")" \
            --controller-port "$(kafka_node_controller_port "$node")" \
            --dir "$dir/node-$node" --log "$(log_file "$name")" \
            --node-id "$node" --voters "$voters" --cluster-id "$cluster_id" \
            >>"$(log_file "$name")" 2>&1 </dev/null &
        echo $! >"$(pid_file "$name")"
    done
    local waited=0
    until kafka_healthy; do
        for node in $(seq 1 "$kafka_nodes"); do
            name=$(kafka_node_name "$node")
            if ! running "$name"; then
                tail -n 20 "$(log_file "$name")" >&2
                log "$name exited during start-up; log: $(log_file "$name")"
                exit 1
            fi
        done
        if ((waited >= 240)); then
            log "Kafka's $kafka_nodes nodes not all up after $((waited / 2))s; logs: $stack/logs/kafka*.log"
            exit 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    log "kafka up: $kafka_nodes nodes on ports $(for node in $(seq 1 "$kafka_nodes"); do printf '%s ' "$(kafka_node_port "$node")"; done)(logs $stack/logs/kafka*.log)"
}

# Stops the named processes together: SIGTERM to all, then SIGKILL to any left after 30 s (a
# broker's controlled shutdown takes a few seconds). Together, because the last node of a
# Kafka cluster stopped alone would wait for a controller quorum that is gone.
stop() {
    local service pid_path pids=() names=()
    for service in "$@"; do
        pid_path=$(pid_file "$service")
        [[ -f $pid_path ]] || continue
        pids+=("$(cat "$pid_path")")
        names+=("$service")
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local pid left
    for _ in $(seq 1 300); do
        left=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        ((left)) || break
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for service in "${names[@]}"; do
        rm -f "$(pid_file "$service")"
        log "$service stopped"
    done
}

# stop, with `kafka` meaning every node of it.
stop_service() {
    if [[ $1 == kafka ]]; then
        # shellcheck disable=SC2046
        stop $(kafka_node_names)
    else
        stop "$1"
    fi
}

# The streaming destinations are in the default set only on request: most work needs neither,
# and OpenSearch's JVM costs start-up time and memory.
streaming_services="s3 opensearch"
services() {
    if (($#)); then
        echo "${@/#seaweedfs/s3}"
    elif [[ ${AUDITLOG_STACK_STREAMING:-0} == 1 ]]; then
        echo kafka clickhouse $streaming_services
    else
        echo kafka clickhouse
    fi
}

status() {
    local service failed=0
    # shellcheck disable=SC2046
    for service in $(services) $(for service in $streaming_services; do
        [[ ${AUDITLOG_STACK_STREAMING:-0} != 1 && -f $(pid_file "$service") ]] && echo "$service"
    done); do
        if healthy "$service"; then
            printf '%-11s healthy  (log %s)\n' "$service" "$(log_file "$service")"
        else
            printf '%-11s DOWN\n' "$service"
            failed=1
        fi
    done
    local name node=1
    for name in $(kafka_node_names); do
        [[ $name == kafka ]] && continue
        node=${name#kafka-}
        if python3 "$repo/deploy/local/kafka/ping.py" "$(kafka_node_port "$node")" >/dev/null 2>&1; then
            printf '%-11s healthy  (port %s, log %s)\n' "$name" "$(kafka_node_port "$node")" "$(log_file "$name")"
        else
            printf '%-11s DOWN     (port %s)\n' "$name" "$(kafka_node_port "$node")"
            failed=1
        fi
    done
    if python3 "$repo/deploy/local/kafka/ping.py" "$kafka_port" >/dev/null 2>&1; then
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
            [[ $app == kafka || $app == kafka-* || $app == clickhouse || " $streaming_services " == *" $app "* ]] || stop "$app"
        done
        # Whatever the default set is now, `down` stops the streaming destinations it started.
        stop $streaming_services
    fi
    for service in $(services "$@"); do stop_service "$service"; done
    ;;
status) status ;;
with)
    install
    started=()
    for service in $(services); do
        if start "$service"; then started+=("$service"); fi
    done
    cleanup() { for service in "${started[@]}"; do stop_service "$service"; done; }
    trap cleanup EXIT
    "$@"
    ;;
*)
    sed -n '2,/^# Topics are not made here/p' "$0" >&2
    exit 2
    ;;
esac
