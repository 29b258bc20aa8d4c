#!/usr/bin/env bash
# What the audit page's browser tests need: Debian's Chromium and playwright-core.
#
#   browser.sh install   install what is missing (idempotent; `make test` runs it)
#   browser.sh check     exit 1, saying what is missing, unless both are there
#
# Chromium comes from Debian (apt-get install chromium, /usr/bin/chromium): a test tool's own
# browser download cannot work here, and the distribution's build is what CI has too.
# playwright-core comes from the npm registry at the version tests/browser/package-lock.json
# pins (`npm ci`), reinstalled only when the lock file changes.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
browser_tests=$repo/tests/browser
chromium=/usr/bin/chromium
lock_stamp=$browser_tests/node_modules/.package-lock.sha256

log() { printf 'browser: %s\n' "$*" >&2; }

have_chromium() { [[ -x $chromium ]]; }

have_node_modules() {
    [[ -f $lock_stamp && $(cat "$lock_stamp") == "$(sha256sum "$browser_tests/package-lock.json" | cut -d' ' -f1)" ]]
}

install() {
    if ! have_chromium; then
        log "installing Debian's chromium"
        if [[ $(id -u) -ne 0 ]]; then
            log "need root for apt-get (or install the chromium package by hand)"
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    if ! have_node_modules; then
        log "installing playwright-core from tests/browser/package-lock.json"
        (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
        sha256sum "$browser_tests/package-lock.json" | cut -d' ' -f1 >"$lock_stamp"
    fi
}

check() {
    local missing=0
    have_chromium || { log "no $chromium: run deploy/local/browser.sh install"; missing=1; }
    have_node_modules || { log "playwright-core missing or stale: run deploy/local/browser.sh install"; missing=1; }
    return $missing
}

case ${1:-} in
install) install ;;
check) check ;;
*) echo "usage: $0 install|check" >&2; exit 2 ;;
esac
