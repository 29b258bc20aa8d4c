#!/usr/bin/env bash
# SeaweedFS's S3 server (Apache-2.0): the S3-compatible object store the streaming tests archive
# into, for the local stack (stack.sh) and the test kit's private servers alike.
#
#   seaweedfs.sh install    build `weed` into the tools cache unless it is there (idempotent)
#   seaweedfs.sh check      exit 1, saying what is missing, unless the pinned build is there
#   seaweedfs.sh path       print the pinned `weed` binary's path
#   seaweedfs.sh run --port P --dir DIR [--access-key K --secret-key S]
#                           exec one process (master, volume, filer and S3 gateway) serving S3
#                           on 127.0.0.1:P, data in DIR, logging to standard error; with keys,
#                           every request must be signed (AWS Signature V4) with them,
#                           otherwise access is anonymous
#   seaweedfs.sh ping PORT [DIR]
#                           exit 0 when the S3 gateway on 127.0.0.1:PORT answers its health check
#                           and, given the instance's DIR, its volume server and filer theirs
#
# `weed` is built from its Go module (github.com/seaweedfs/seaweedfs) through the Go module
# proxy, with the machine's Go: the module's go.mod carries a replace directive, so
# `go install pkg@version` refuses it and the build runs in a writable copy of the module's source.
# A cold build takes about 10 minutes on two busy cores (8 minutes of CPU), so the binary is
# cached beside Kafka, one directory per version: a version bump rebuilds, an unchanged pin
# costs nothing. The pinned module asks for Go 1.26.6; should a later pin ask for a newer Go
# than the machine's, export GOTOOLCHAIN=go1.27.3 (the go command fetches it from the proxy).
#
# Locations (override with the environment):
#   AUDITLOG_TOOLS_DIR  installed tools   ${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools
#   AUDITLOG_GO         the Go toolchain  go on PATH, else /usr/local/go/bin/go
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The pin: SeaweedFS publishes no semantic-version tags for its Go module, so the proxy serves
# pseudo-versions of its main branch; bump deliberately (`go list -m -versions` lists none).
module=github.com/seaweedfs/seaweedfs
version=v0.0.0-20261109003541-7506e5f91cd6
tools=${AUDITLOG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools}
home=$tools/seaweedfs-${version##*-}
weed=$home/bin/weed

log() { printf 'seaweedfs: %s\n' "$*" >&2; }

go_tool() {
    if [[ -n ${AUDITLOG_GO:-} ]]; then
        echo "$AUDITLOG_GO"
    elif command -v go >/dev/null; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        echo /usr/local/go/bin/go
    else
        log "no Go toolchain: install Go (1.26.6 or later) or set AUDITLOG_GO"
        exit 1
    fi
}

installed() { [[ -x $weed ]]; }

install() {
    installed && return
    mkdir -p "$tools"
    # Tests may start several servers at once; the first builds, the others wait for it.
    local lock
    exec {lock}>"$tools/seaweedfs-install.lock"
    flock "$lock"
    if installed; then
        flock -u "$lock"
        return
    fi
    local go started dir
    go=$(go_tool)
    mkdir -p "$home"
    log "building SeaweedFS $version from its Go module into $home (several minutes, once)"
    started=$(date +%s)
    # Global, not local: the EXIT trap runs after this function has returned. Building in a
    # scratch directory means an interrupted build never leaves a half-written binary behind.
    scratch=$(mktemp -d "$home/build.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    dir=$("$go" mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [[ -n $dir ]] || { log "the Go module proxy did not give $module@$version"; exit 1; }
    cp -r "$dir" "$scratch/src"
    chmod -R u+w "$scratch/src"
    (cd "$scratch/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$go" build -trimpath \
        -ldflags "-s -w" -o "$scratch/weed" ./weed) >"$tools/seaweedfs-install.log" 2>&1 || {
        tail -n 30 "$tools/seaweedfs-install.log" >&2
        log "build failed; full log: $tools/seaweedfs-install.log"
        exit 1
    }
    mkdir -p "$home/bin"
    mv "$scratch/weed" "$weed"
    rm -rf "$scratch"
    flock -u "$lock"
    log "built $("$weed" version 2>/dev/null | head -n 1) in $(($(date +%s) - started))s"
}

check() {
    installed || { log "no SeaweedFS build at $weed: run deploy/local/seaweedfs.sh install"; return 1; }
}

# A port below the ephemeral range, which no outgoing connection can take before the
# server binds it (free_port.py says why).
free_port() {
    python3 "$here/free_port.py"
}

# The S3 gateway's identities (SeaweedFS's JSON identity format): one admin identity with the
# given keys. Once any identity exists, the gateway rejects unsigned and wrongly signed requests.
identities() { # identities ACCESS_KEY SECRET_KEY
    printf '{"identities":[{"name":"auditlog","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","List","Tagging","Write"]}]}\n' \
        "$1" "$2"
}

run() {
    local port="" dir="" access_key="" secret_key=""
    while (($#)); do
        case $1 in
        --port) port=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --access-key) access_key=$2; shift 2 ;;
        --secret-key) secret_key=$2; shift 2 ;;
        *) log "unknown argument $1"; exit 2 ;;
        esac
    done
    [[ -n $port && -n $dir ]] || { log "run needs --port and --dir"; exit 2; }
    [[ (-n $access_key && -n $secret_key) || (-z $access_key && -z $secret_key) ]] || { log "give both --access-key and --secret-key, or neither"; exit 2; }
    install
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    local config=()
    if [[ -n $access_key ]]; then
        identities "$access_key" "$secret_key" >"$dir/s3.json"
        chmod 600 "$dir/s3.json"
        config=("-s3.config=$dir/s3.json")
    fi
    # The master, volume server and filer are internal to this one process, but each listens
    # on an HTTP port and a gRPC port (by default the HTTP port + 10000): free ports, so that
    # several instances (the stack's and tests' private ones) and the stack's other services
    # (ClickHouse's 8123, the demo's 8080) never collide. Every listener binds to loopback
    # only; the gateway's Iceberg and Lance catalogs (fixed ports 8181 and 9101) stay off.
    # Telemetry is off (no network here, and none wanted). The volume server's 10 s pause
    # before stopping serves a cluster's load balancers, of which there are none; even so, a
    # SIGTERM takes over 15 s (the filer retries its change-log flush against the volume
    # server that stopped first), so callers stop it with a deadline, then SIGKILL: a PUT is
    # durable once answered, whatever that flush loses.
    local master volume filer
    master=$(free_port)
    volume=$(free_port)
    filer=$(free_port)
    # For ping: the internal servers' health routes say when the whole chain serves.
    printf 'master=%s\nvolume=%s\nfiler=%s\n' "$master" "$volume" "$filer" >"$dir/ports"
    local grpc=(
        "-master.port.grpc=$(free_port)" "-volume.port.grpc=$(free_port)"
        "-filer.port.grpc=$(free_port)" "-s3.port.grpc=$(free_port)"
    )
    # exec: the caller's pid is the server's, so a signal to it reaches the server itself.
    exec "$weed" server \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 "-dir=$dir/data" \
        "-master.port=$master" "-volume.port=$volume" "-filer.port=$filer" "${grpc[@]}" \
        -filer -s3 "-s3.port=$port" "${config[@]}" -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.telemetry=false -master.volumeSizeLimitMB=64 -volume.max=0 \
        -volume.preStopSeconds=0
}

# The S3 gateway's health route answers 200 once the gateway listens, which can be before its
# filer serves and its volume server has registered with the master (then reads fail); with
# the instance's directory, ping asks those two as well, and asks the master whether it knows
# every volume on disk (after a restart, reads of older objects fail until it does).
ping() {
    local port=$1 dir=${2:-} name volume known on_disk
    healthz "$port" || return 1
    [[ -n $dir ]] || return 0
    [[ -f $dir/ports ]] || return 1
    for name in volume filer; do
        healthz "$(sed -n "s/^$name=//p" "$dir/ports")" || return 1
    done
    volume=$(sed -n 's/^volume=//p' "$dir/ports")
    known=$(curl -s --max-time 2 "http://127.0.0.1:$(sed -n 's/^master=//p' "$dir/ports")/dir/status" |
        grep -o "\"Url\":\"127.0.0.1:$volume\"[^}]*\"Volumes\":[0-9]*" | grep -o '[0-9]*$') || return 1
    on_disk=$(find "$dir/data" -maxdepth 1 -name '*.dat' 2>/dev/null | wc -l)
    ((known >= on_disk))
}

healthz() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/healthz") == 200 ]]
}

case ${1:-} in
install) install ;;
check) check ;;
path) echo "$weed" ;;
run) shift; run "$@" ;;
ping) ping "${2:?port}" "${3:-}" ;;
*) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
