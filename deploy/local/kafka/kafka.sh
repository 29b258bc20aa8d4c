#!/usr/bin/env bash
# The local stack's Apache Kafka broker: installed from Maven Central, run as a single-node
# KRaft cluster. stack.sh and the test kit's private brokers both start it through here, so
# there is one way to lay out, format and launch a broker.
#
#   kafka.sh install                   copy the pinned broker classpath into the tools cache
#   kafka.sh run --port P --controller-port C --dir DIR [--log FILE]
#                [--node-id N --voters ID@HOST:PORT,... --cluster-id ID] [--owner PID]
#                                      format DIR on first start, then exec the broker
#                                      (data in DIR/data, rendered config in DIR/server.properties);
#                                      with --voters, node N of a cluster of those controllers;
#                                      with --owner, killed (and DIR removed) once PID is gone
#   kafka.sh ping [PORT]               exit 0 when a broker answers a Metadata request
#
# Environment: AUDITLOG_TOOLS_DIR (tools cache), AUDITLOG_KAFKA_HEAP (JVM heap, default 1g).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=${AUDITLOG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools}
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
# The heap is bounded: 1 GiB holds a local broker's metadata, groups and page-cache-backed logs
# comfortably; the JVM would otherwise size it from the machine (a quarter of 24 GiB).
heap=${AUDITLOG_KAFKA_HEAP:-1g}

log() { printf 'kafka: %s\n' "$*" >&2; }

# The pins, and the layout of an install this script makes (bump it when that changes): a
# change to either means a new install, in a directory of its own. So checkouts at different
# commits share the cache without ever replacing the jars under each other's running brokers.
install_layout=2
pins_digest() { { cat "$here/pom.xml"; echo "layout $install_layout"; } | sha256sum | cut -d' ' -f1; }
kafka_home=$tools/kafka-$kafka_version-$(pins_digest | cut -c1-12)

installed() { [[ -f $kafka_home/.installed ]]; }

install() {
    installed && return
    mkdir -p "$tools"
    # Tests start several brokers at once; the first installs, the others wait for it.
    local lock
    exec {lock}>"$tools/kafka-install.lock"
    flock "$lock"
    if installed; then
        flock -u "$lock"
        return
    fi
    command -v java >/dev/null || { log "java is missing (Java 17 or newer is needed)"; exit 1; }
    command -v mvn >/dev/null || { log "mvn is missing (Maven fetches the broker)"; exit 1; }
    log "installing Apache Kafka $kafka_version from Maven Central into $kafka_home"
    rm -rf "$kafka_home"
    mkdir -p "$kafka_home"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$kafka_home/lib" >"$tools/kafka-install.log" 2>&1 || {
        tail -n 30 "$tools/kafka-install.log" >&2
        log "install failed; full log: $tools/kafka-install.log"
        exit 1
    }
    format_template
    train_class_archive
    touch "$kafka_home/.installed"
    flock -u "$lock"
}

# A port below the ephemeral range, which no outgoing connection can take before the
# server binds it (free_port.py says why).
free_port() {
    python3 "$here/../free_port.py"
}

# A JVM start spends most of its time loading and verifying classes. One training run of the
# broker records the classes it loads into a CDS archive (JDK 12+), and every later start
# maps them instead: measured here, 11-16 s instead of 23-27 s to the first Metadata answer
# on a loaded 2-core machine. Without the archive (or with a JDK that rejects it) the JVM
# simply starts the slow way.
train_class_archive() {
    local work=$kafka_home/train port controller_port pid
    rm -rf "$work" && mkdir -p "$work"
    cp -r "$kafka_home/formatted" "$work/data"
    port=$(free_port)
    controller_port=$(free_port)
    render "$port" "$controller_port" "$work/data" >"$work/server.properties"
    java "${jvm_flags[@]}" -XX:ArchiveClassesAtExit="$kafka_home/kafka.jsa" \
        -Dauditlog.kafka.log="$work/kafka.log" kafka.Kafka "$work/server.properties" \
        >"$work/jvm.out" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        python3 "$here/ping.py" "$port" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
    [[ -f $kafka_home/kafka.jsa ]] || log "no class archive was written; brokers start without it"
}

# The broker's own JVM flags (as kafka-run-class.sh sets them): G1 with short pauses.
jvm_flags=(-Xms256m "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
    "-Dlog4j2.configurationFile=$here/log4j2.properties" -cp "$kafka_home/lib/*")

# render PORT CONTROLLER_PORT DATA_DIR [NODE_ID VOTERS] > server.properties
# Without NODE_ID and VOTERS: node 1, the only voter. Internal topics get one replica per
# voter (at most three) and need two in sync once there are three.
render() {
    local node_id=${4:-1} voters=${5:-1@127.0.0.1:$2}
    local nodes replicas min_isr
    nodes=$(tr ',' '\n' <<<"$voters" | grep -c .)
    replicas=$((nodes < 3 ? nodes : 3))
    min_isr=$((replicas < 3 ? 1 : 2))
    sed -e "s|@PORT@|$1|g" -e "s|@CONTROLLER_PORT@|$2|g" -e "s|@DATA_DIR@|$3|g" \
        -e "s|@NODE_ID@|$node_id|g" -e "s|@VOTERS@|$voters|g" \
        -e "s|@REPLICAS@|$replicas|g" -e "s|@MIN_ISR@|$min_isr|g" \
        "$here/server.properties"
}

# A Kafka Uuid: 16 random bytes in unpadded URL-safe base64.
kafka_uuid() { head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }

# The formatted template is node 1 of a one-node cluster. A node of a larger cluster differs
# only in its meta.properties (the static voters are in the config, not in the log), so its
# directory is the template's with its own node id, directory id and the cluster's id.
place_in_cluster() { # place_in_cluster DATA_DIR NODE_ID CLUSTER_ID
    local meta=$1/meta.properties
    sed -i -e "s|^node.id=.*|node.id=$2|" -e "s|^cluster.id=.*|cluster.id=$3|" \
        -e "s|^directory.id=.*|directory.id=$(kafka_uuid)|" "$meta"
}

# Formatting a KRaft directory costs a JVM start (seconds); a formatted empty directory is
# the same for every single-node instance, so it is made once at install and copied.
format_template() {
    local work=$kafka_home/format
    rm -rf "$work" && mkdir -p "$work"
    render 9 10 "$kafka_home/formatted" >"$work/server.properties"
    local cluster_id
    cluster_id=$(kafka_uuid)
    java "${jvm_flags[@]}" -Dauditlog.kafka.log="$work/format.log" kafka.tools.StorageTool format \
        --cluster-id "$cluster_id" --config "$work/server.properties" >"$work/format.out" 2>&1 || {
        cat "$work/format.out" >&2
        log "formatting the KRaft template failed"
        exit 1
    }
}

run() {
    local port="" controller_port="" dir="" log_path="" node_id="" voters="" cluster_id="" owner=""
    while (($#)); do
        case $1 in
        --port) port=$2; shift 2 ;;
        --controller-port) controller_port=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --log) log_path=$2; shift 2 ;;
        --node-id) node_id=$2; shift 2 ;;
        --voters) voters=$2; shift 2 ;;
        --cluster-id) cluster_id=$2; shift 2 ;;
        --owner) owner=$2; shift 2 ;;
        *) log "unknown argument $1"; exit 2 ;;
        esac
    done
    [[ -n $port && -n $controller_port && -n $dir ]] || { log "run needs --port, --controller-port and --dir"; exit 2; }
    if [[ -n $node_id$voters$cluster_id && ( -z $node_id || -z $voters || -z $cluster_id ) ]]; then
        log "a cluster node needs --node-id, --voters and --cluster-id together"
        exit 2
    fi
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    log_path=${log_path:-$dir/kafka.log}
    if [[ ! -f $dir/data/meta.properties ]]; then
        rm -rf "$dir/data" "$dir/data.new"
        cp -r "$kafka_home/formatted" "$dir/data.new"
        [[ -z $node_id ]] || place_in_cluster "$dir/data.new" "$node_id" "$cluster_id"
        mv "$dir/data.new" "$dir/data"
    fi
    render "$port" "$controller_port" "$dir/data" ${node_id:+"$node_id" "$voters"} >"$dir/server.properties"
    local archive=()
    [[ -f $kafka_home/kafka.jsa ]] && archive=("-XX:SharedArchiveFile=$kafka_home/kafka.jsa")
    if [[ -n $owner ]]; then
        # A test's broker may be shared by several tests and so outlive every test's own
        # clean-up; it must not outlive the test process. This watcher ends with the broker
        # ($$ is the broker's pid after the exec below) or kills it once the owner is gone.
        (
            while kill -0 "$owner" 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 1; done
            if ! kill -0 "$owner" 2>/dev/null && kill -KILL $$ 2>/dev/null; then
                while kill -0 $$ 2>/dev/null; do sleep 0.1; done
                rm -rf "$dir"
            fi
        ) </dev/null &
    fi
    # exec: the caller's pid is the broker's, so a signal to it reaches the broker itself.
    exec java "${jvm_flags[@]}" "${archive[@]}" -Dauditlog.kafka.log="$log_path" \
        kafka.Kafka "$dir/server.properties"
}

case ${1:-} in
install) install ;;
run) shift; run "$@" ;;
ping) exec python3 "$here/ping.py" "${2:-${AUDITLOG_KAFKA_PORT:-9092}}" ;;
*) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
