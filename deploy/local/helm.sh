#!/usr/bin/env bash
# Helm, to render and lint the chart in deploy/helm/auditlog (crates/auditlog/tests/helm_chart.rs).
#
#   helm.sh install   build Helm if it is not in the tools cache (idempotent; `make test` runs it)
#   helm.sh check     exit 1, saying what is missing, unless the pinned Helm is there
#   helm.sh path      print the pinned Helm binary's path
#
# Helm is built from its Go module (helm.sh/helm/v4) with the machine's Go, through the Go module
# proxy: the project tests against the real Helm without downloading a release archive. The build
# lands in the tools cache beside Kafka, one directory per version, so a version bump rebuilds and
# an unchanged pin costs nothing. A cold build takes a few minutes on two cores.
#
# Locations (override with the environment):
#   AUDITLOG_TOOLS_DIR  installed tools   ${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools
#   AUDITLOG_GO         the Go toolchain  go on PATH, else /usr/local/go/bin/go
set -euo pipefail

# The pin: bump it deliberately (`go list -m -versions helm.sh/helm/v4` lists the releases).
helm_version=v4.3.2
tools=${AUDITLOG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog/tools}
helm_dir=$tools/helm-$helm_version
helm_bin=$helm_dir/bin/helm

log() { printf 'helm: %s\n' "$*" >&2; }

go_tool() {
    if [[ -n ${AUDITLOG_GO:-} ]]; then
        echo "$AUDITLOG_GO"
    elif command -v go >/dev/null; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        echo /usr/local/go/bin/go
    else
        log "no Go toolchain: install Go (1.24 or later) or set AUDITLOG_GO"
        exit 1
    fi
}

have_helm() { [[ -x $helm_bin ]]; }

install() {
    have_helm && return
    local go started
    go=$(go_tool)
    mkdir -p "$helm_dir"
    log "building Helm $helm_version from its Go module into $helm_dir (a few minutes, once)"
    started=$(date +%s)
    # Build into a scratch directory first so an interrupted build never leaves a half-written
    # binary at the cached path.
    # Global, not local: the EXIT trap runs after this function has returned.
    scratch=$(mktemp -d "$helm_dir/build.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    if ! GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN=$scratch "$go" install \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" \
        "helm.sh/helm/v4/cmd/helm@$helm_version"; then
        # `go install pkg@version` refuses modules whose go.mod has replace directives; build
        # from a writable copy of the downloaded module instead.
        log "go install refused; building from the module's source"
        local dir
        dir=$("$go" mod download -json "helm.sh/helm/v4@$helm_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
        cp -r "$dir" "$scratch/src"
        chmod -R u+w "$scratch/src"
        (cd "$scratch/src" && CGO_ENABLED=0 "$go" build -o "$scratch/helm" \
            -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" ./cmd/helm)
    fi
    mkdir -p "$helm_dir/bin"
    mv "$scratch/helm" "$helm_bin"
    log "built $("$helm_bin" version --short) in $(($(date +%s) - started))s"
}

check() {
    have_helm || { log "no Helm $helm_version at $helm_bin: run deploy/local/helm.sh install"; return 1; }
}

case ${1:-} in
install) install ;;
check) check ;;
path) echo "$helm_bin" ;;
*) echo "usage: $0 install|check|path" >&2; exit 2 ;;
esac
