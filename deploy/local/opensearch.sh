#!/usr/bin/env bash
# The local stack's OpenSearch node (Apache-2.0), where the streaming tests index events:
# installed from Maven Central (pins and files in deploy/local/opensearch/), run as a
# single-node cluster. stack.sh and the test kit's private nodes both start it through here, so
# there is one way to lay out and launch a node.
#
#   opensearch.sh install        copy the pinned server classpath into the tools cache and
#                                compile the launcher (opensearch/Launcher.java) against it
#   opensearch.sh check          exit 1, saying what is missing, unless the pinned install is there
#   opensearch.sh run --port P --dir DIR [--transport-port T]
#                                exec one node: REST API on 127.0.0.1:P, data in DIR/data,
#                                config rendered into DIR/config (transport on a free port unless T)
#   opensearch.sh ping PORT      exit 0 when the node on 127.0.0.1:PORT serves (see ping below)
#
# What it is: OpenSearch 2.19 (the last line on Java 17) from `org.opensearch:opensearch`, with
# the HTTP layer (transport-netty4) and the common analyzers on the classpath, as plugins the
# launcher hands to the node. No security plugin: plain HTTP, no authentication, loopback only.
# It logs to standard output.
#
# Environment: AUDITLOG_TOOLS_DIR (tools cache), AUDITLOG_OPENSEARCH_HEAP (JVM heap, default 512m).
set -euo pipefail

# Its files (pins, launcher, config templates) are in deploy/local/opensearch/.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/opensearch" && pwd)
tools=${AUDITLOG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools}
opensearch_version=$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$here/pom.xml")
# Bounded: a test node's indices are small, and the JVM would otherwise size the heap from the
# machine (a quarter of its memory).
heap=${AUDITLOG_OPENSEARCH_HEAP:-512m}

log() { printf 'opensearch: %s\n' "$*" >&2; }

# The pins, the launcher and the layout of an install (bump it when that changes): a change to
# any means a new install in a directory of its own, so checkouts at different commits share the
# cache without replacing jars under each other's running nodes.
install_layout=2
pins_digest() {
    { cat "$here/pom.xml" "$here/Launcher.java"; echo "layout $install_layout"; } | sha256sum | cut -d' ' -f1
}
opensearch_home=$tools/opensearch-$opensearch_version-$(pins_digest | cut -c1-12)

installed() { [[ -f $opensearch_home/.installed ]]; }

install() {
    installed && return
    mkdir -p "$tools"
    # Tests may start several nodes at once; the first installs, the others wait for it.
    local lock
    exec {lock}>"$tools/opensearch-install.lock"
    flock "$lock"
    if installed; then
        flock -u "$lock"
        return
    fi
    command -v java >/dev/null || { log "java is missing (Java 17 or newer is needed)"; exit 1; }
    command -v javac >/dev/null || { log "javac is missing (a JDK 17 compiles the launcher)"; exit 1; }
    command -v mvn >/dev/null || { log "mvn is missing (Maven fetches the server)"; exit 1; }
    log "installing OpenSearch $opensearch_version from Maven Central into $opensearch_home"
    local started
    started=$(date +%s)
    rm -rf "$opensearch_home"
    mkdir -p "$opensearch_home"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$opensearch_home/lib" >"$tools/opensearch-install.log" 2>&1 || {
        tail -n 30 "$tools/opensearch-install.log" >&2
        log "install failed; full log: $tools/opensearch-install.log"
        exit 1
    }
    # A jar, not a class directory: the JVM refuses to archive classes (below) for a class path
    # holding a non-empty directory.
    { javac -nowarn -d "$opensearch_home/classes" -cp "$opensearch_home/lib/*" "$here/Launcher.java" &&
        jar --create --file "$opensearch_home/launcher.jar" -C "$opensearch_home/classes" . &&
        rm -rf "$opensearch_home/classes"; } >>"$tools/opensearch-install.log" 2>&1 || {
        tail -n 30 "$tools/opensearch-install.log" >&2
        log "compiling the launcher failed; full log: $tools/opensearch-install.log"
        exit 1
    }
    train_class_archive
    touch "$opensearch_home/.installed"
    flock -u "$lock"
    log "installed in $(($(date +%s) - started))s"
}

check() {
    installed || { log "no OpenSearch $opensearch_version at $opensearch_home: run deploy/local/opensearch.sh install"; return 1; }
}

# A port below the ephemeral range, which no outgoing connection can take before the
# server binds it (free_port.py says why).
free_port() {
    python3 "$here/../free_port.py"
}

jvm_flags=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true
    -Dfile.encoding=UTF-8 -Dlog4j2.formatMsgNoLookups=true
    -cp "$opensearch_home/launcher.jar:$opensearch_home/lib/*")

# DIR's layout, as a distribution's home: config/ (rendered), data/, logs/, and the empty
# modules/ and plugins/ directories the node insists on scanning.
prepare() { # prepare DIR HTTP_PORT TRANSPORT_PORT
    local dir=$1
    mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/modules" "$dir/plugins"
    sed -e "s|@DATA_DIR@|$dir/data|g" -e "s|@LOGS_DIR@|$dir/logs|g" \
        -e "s|@HTTP_PORT@|$2|g" -e "s|@TRANSPORT_PORT@|$3|g" \
        "$here/opensearch.yml" >"$dir/config/opensearch.yml"
    cp "$here/log4j2.properties" "$dir/config/log4j2.properties"
}

# As for Kafka (kafka.sh): one training start records the classes a node loads into a CDS
# archive that later starts map instead of loading and verifying them again. Without the
# archive the node simply starts the slow way.
train_class_archive() {
    local work=$opensearch_home/train port pid
    rm -rf "$work"
    port=$(free_port)
    prepare "$work" "$port" "$(free_port)"
    java "${jvm_flags[@]}" -XX:ArchiveClassesAtExit="$opensearch_home/opensearch.jsa" \
        auditlog.local.Launcher "$work" >"$work/jvm.out" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        ping "$port" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
    [[ -f $opensearch_home/opensearch.jsa ]] || log "no class archive was written; nodes start without it"
}

run() {
    local port="" transport_port="" dir=""
    while (($#)); do
        case $1 in
        --port) port=$2; shift 2 ;;
        --transport-port) transport_port=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) log "unknown argument $1"; exit 2 ;;
        esac
    done
    [[ -n $port && -n $dir ]] || { log "run needs --port and --dir"; exit 2; }
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The transport port carries no traffic on a single node, but it is always bound: a free
    # one keeps instances off each other's (and off OpenSearch's default 9300).
    prepare "$dir" "$port" "${transport_port:-$(free_port)}"
    local archive=()
    [[ -f $opensearch_home/opensearch.jsa ]] && archive=("-XX:SharedArchiveFile=$opensearch_home/opensearch.jsa")
    # exec: the caller's pid is the node's, so a signal to it reaches the node itself.
    exec java "${jvm_flags[@]}" "${archive[@]}" auditlog.local.Launcher "$dir"
}

# Green or yellow: the node has elected itself and serves requests; and the launcher has set
# the cluster's default of no replicas, so an index created from now on is green.
ping() {
    local health settings
    health=$(curl -fsS --max-time 2 "http://127.0.0.1:$1/_cluster/health" 2>/dev/null) || return 1
    [[ $health == *'"status":"green"'* || $health == *'"status":"yellow"'* ]] || return 1
    settings=$(curl -fsS --max-time 2 "http://127.0.0.1:$1/_cluster/settings" 2>/dev/null) || return 1
    [[ $settings == *'"default_number_of_replicas":"0"'* ]]
}

case ${1:-} in
install) install ;;
check) check ;;
run) shift; run "$@" ;;
ping) ping "${2:?port}" ;;
*) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
