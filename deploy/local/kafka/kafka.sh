#!/usr/bin/env bash
# The local stack's Apache Kafka broker: installed from Maven Central, run as a single-node
# KRaft cluster. stack.sh and the test kit's private brokers both start it through here, so
# there is one way to lay out, format and launch a broker.
#
#   kafka.sh install                   copy the pinned broker classpath into the tools cache
#   kafka.sh run --port P --controller-port C --dir DIR [--log FILE]
#                                      format DIR on first start, then exec the broker
#                                      (data in DIR/data, rendered config in DIR/server.properties)
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

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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

render() { # render PORT CONTROLLER_PORT DATA_DIR > server.properties
    sed -e "s|@PORT@|$1|g" -e "s|@CONTROLLER_PORT@|$2|g" -e "s|@DATA_DIR@|$3|g" \
        "$here/server.properties"
}

# Formatting a KRaft directory costs a JVM start (seconds); a formatted empty directory is
# the same for every single-node instance, so it is made once at install and copied.
format_template() {
    local work=$kafka_home/format
    rm -rf "$work" && mkdir -p "$work"
    render 9 10 "$kafka_home/formatted" >"$work/server.properties"
    local cluster_id
    # A Kafka Uuid: 16 random bytes in unpadded URL-safe base64.
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    java "${jvm_flags[@]}" -Dauditlog.kafka.log="$work/format.log" kafka.tools.StorageTool format \
        --cluster-id "$cluster_id" --config "$work/server.properties" >"$work/format.out" 2>&1 || {
        cat "$work/format.out" >&2
        log "formatting the KRaft template failed"
        exit 1
    }
}

run() {
    local port="" controller_port="" dir="" log_path=""
    while (($#)); do
        case $1 in
        --port) port=$2; shift 2 ;;
        --controller-port) controller_port=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --log) log_path=$2; shift 2 ;;
        *) log "unknown argument $1"; exit 2 ;;
        esac
    done
    [[ -n $port && -n $controller_port && -n $dir ]] || { log "run needs --port, --controller-port and --dir"; exit 2; }
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    log_path=${log_path:-$dir/kafka.log}
    if [[ ! -f $dir/data/meta.properties ]]; then
        rm -rf "$dir/data"
        cp -r "$kafka_home/formatted" "$dir/data"
    fi
    render "$port" "$controller_port" "$dir/data" >"$dir/server.properties"
    local archive=()
    [[ -f $kafka_home/kafka.jsa ]] && archive=("-XX:SharedArchiveFile=$kafka_home/kafka.jsa")
    # exec: the caller's pid is the broker's, so a signal to it reaches the broker itself.
    exec java "${jvm_flags[@]}" "${archive[@]}" -Dauditlog.kafka.log="$log_path" \
        kafka.Kafka "$dir/server.properties"
}

case ${1:-} in
install) install ;;
run) shift; run "$@" ;;
ping) exec python3 "$here/ping.py" "${2:-${AUDITLOG_KAFKA_PORT:-9092}}" ;;
*) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
