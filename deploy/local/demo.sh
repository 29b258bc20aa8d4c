#!/usr/bin/env bash
# `make demo`: the whole system on the local stack, then a guide of real queries to try.
#
# Applies the schema, starts two ingesters in one consumer group, generates DEMO_EVENTS
# (default 1,000,000) realistic events through the SDK, shows ingest progress until every
# event is queryable, starts the API and the audit page, and prints results of real queries,
# ending with the page's address. Everything keeps running until `make down`. A second run
# reuses what is there (events, processes).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
stack=${AUDITLOG_STACK_DIR:-$repo/.stack}
bin=$repo/target/release/auditlog
target_events=${DEMO_EVENTS:-1000000}
api=${AUDITLOG_API_LISTEN:-127.0.0.1:8080}
clickhouse=${AUDITLOG_CLICKHOUSE_URL:-http://127.0.0.1:8123}
database=${AUDITLOG_CLICKHOUSE_DATABASE:-audit}
table=${AUDITLOG_CLICKHOUSE_TABLE:-audit_logs}

# Bold headings on a terminal only: a log file or a CI console gets no escape codes.
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    bold=$'\033[1m' plain=$'\033[0m' interactive=1
else
    bold='' plain='' interactive=0
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
running() { [[ -f $stack/run/$1.pid ]] && kill -0 "$(cat "$stack/run/$1.pid")" 2>/dev/null; }

# Starts `auditlog ARGS...` in the background as NAME unless it already runs.
start_app() {
    local name=$1
    shift
    if running "$name"; then
        echo "$name already running (pid $(cat "$stack/run/$name.pid"))"
        return
    fi
    mkdir -p "$stack/run" "$stack/logs"
    nohup "$bin" "$@" >>"$stack/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$stack/run/$name.pid"
    echo "$name started (pid $!, log $stack/logs/$name.log)"
}

count() {
    scalar "SELECT uniqExact(id) FROM $table"
}

# CPU seconds (user + system) the demo's ingesters have used so far, from /proc/PID/stat.
ingesters_cpu() {
    local ticks=0 name pid fields
    for name in ingester-1 ingester-2; do
        running "$name" || continue
        pid=$(cat "$stack/run/$name.pid")
        # Fields 14 and 15, counted after the command name's closing parenthesis.
        fields=$(sed 's/.*) //' "/proc/$pid/stat")
        read -r -a stat <<<"$fields"
        ticks=$((ticks + stat[11] + stat[12]))
    done
    awk -v ticks="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", ticks / hz }'
}

scalar() {
    curl -fsS "$clickhouse/?database=$database" --data-binary "$1" 2>/dev/null || echo 0
}

say "schema"
# The topics' replication fits the local stack: one copy on one broker, or a production
# cluster's three copies, two in sync, with AUDITLOG_KAFKA_NODES=3 (migrate's own defaults
# are a production cluster's, and it refuses more replicas than there are brokers).
if ((${AUDITLOG_KAFKA_NODES:-1} >= 3)); then replication=(3 2); else replication=(1 1); fi
"$bin" migrate --kafka-replication-factor "${AUDITLOG_KAFKA_REPLICATION_FACTOR:-${replication[0]}}" \
    --kafka-min-insync-replicas "${AUDITLOG_KAFKA_MIN_INSYNC_REPLICAS:-${replication[1]}}"
# Rows from before migration 5 carry no source position, so no digest covers them and
# verify would rightly call them unprotected: a demo from an older checkout starts afresh.
legacy=$(scalar "SELECT count() FROM $table WHERE source_partition < 0")
if ((legacy > 0)); then
    say "$legacy events predate tamper evidence: starting the demo's data afresh"
    for name in ingester-1 ingester-2 api; do
        if running "$name"; then
            kill "$(cat "$stack/run/$name.pid")" 2>/dev/null || true
        fi
        rm -f "$stack/run/$name.pid"
    done
    sleep 2
    curl -fsS "$clickhouse/" --data-binary "DROP DATABASE IF EXISTS $database SYNC"
    "$bin" migrate --skip-topics
fi

# The checkpoint signing key: the ingesters sign with it, verify trusts its public half.
key=$stack/keys/checkpoint.key
if [[ ! -f $key ]]; then
    mkdir -p "$stack/keys"
    "$bin" keygen --out "$key"
fi
export AUDITLOG_SIGNING_KEY_FILE=$key AUDITLOG_PUBLIC_KEYS=$key.pub
# Checkpoints every 10 s instead of 60, so the guide's verify is signed for soon.
export AUDITLOG_CHECKPOINT_INTERVAL_SECS=${AUDITLOG_CHECKPOINT_INTERVAL_SECS:-10}

say "two ingesters in consumer group ${AUDITLOG_KAFKA_GROUP:-auditlog-ingester}"
start_app ingester-1 ingest --metrics-listen 127.0.0.1:9464
start_app ingester-2 ingest --metrics-listen 127.0.0.1:9465

existing=$(count)
cpu_before=$(ingesters_cpu)
if ((existing >= target_events)); then
    say "events: $existing already ingested, reusing them"
else
    missing=$((target_events - existing))
    say "generating $missing realistic Coder-like events through the SDK"
    # A seed of its own per run, so a resumed demo adds new events instead of repeating ids.
    "$bin" generate --count "$missing" --seed "$((existing + 1))"
fi

say "ingesting until every event is queryable"
started=$(date +%s)
while true; do
    now=$(count)
    if ((interactive)); then
        printf '\r  %s / %s events queryable' "$now" "$target_events"
    elif (((now >= target_events) || ($(date +%s) - started) % 10 == 0)); then
        printf '  %s / %s events queryable\n' "$now" "$target_events"
    fi
    ((now >= target_events)) && break
    if (($(date +%s) - started > 900)); then
        echo
        echo "ingest did not finish in 15 minutes; see $stack/logs/ingester-*.log" >&2
        exit 1
    fi
    sleep 1
done
((interactive)) && echo
cpu_after=$(ingesters_cpu)
ingested=$((now - existing))

say "the API and the audit page on http://$api"
wait_for_api() {
    for _ in $(seq 1 100); do
        curl -fsS "http://$api/healthz" >/dev/null 2>&1 && return
        sleep 0.2
    done
}
start_app api serve
wait_for_api
# An API left running by an older demo may predate the page: restart it with this binary.
if ! curl -fsS "http://$api/" 2>/dev/null | grep -q '<title>Audit logs</title>'; then
    echo "the running API serves no audit page; restarting it"
    kill "$(cat "$stack/run/api.pid")" 2>/dev/null || true
    sleep 1
    rm -f "$stack/run/api.pid"
    start_app api serve
    wait_for_api
fi

say "a few real queries"
echo '$ auditlog query --format table --limit 5 "resource_type:workspace action:create"'
"$bin" query --format table --limit 5 "resource_type:workspace action:create"
echo
echo '$ auditlog query --count "resource_type:workspace_build action:start build_reason:autostart"'
"$bin" query --count "resource_type:workspace_build action:start build_reason:autostart"
echo
echo "\$ curl -s 'http://$api/api/v2/audit?q=resource_type:api_key+action:login&limit=2'"
curl -fsS "http://$api/api/v2/audit?q=resource_type:api_key+action:login&limit=2"
echo
echo
echo "\$ curl -s 'http://$api/api/v2/audit?q=action:explode'   # Coder's 400 body"
curl -sS "http://$api/api/v2/audit?q=action:explode"
echo

say "tamper evidence"
# Wait (at most two minutes) for a checkpoint to sign the last batches, then verify.
for _ in $(seq 1 24); do
    report=$("$bin" verify --no-progress 2>&1 || true)
    grep -q "not yet signed\|no valid checkpoint" <<<"$report" || break
    sleep 5
done
echo "\$ auditlog verify --public-key $key.pub"
"$bin" verify --no-progress || echo "(verify found problems: see above)"

say "ingester cost"
if ((ingested > 0)); then
    # Idle time while the generator warmed up is included: this is the fleet's real bill.
    awk -v before="$cpu_before" -v after="$cpu_after" -v events="$ingested" 'BEGIN {
        printf "  %d events ingested by 2 ingesters in %.1f CPU seconds: %.2f us of CPU per event\n",
            events, after - before, (after - before) * 1e6 / events }'
else
    echo "  no new events this run ($existing already stored); the ingesters have used $cpu_after CPU seconds since they started"
fi

cat <<GUIDE

${bold}== try these${plain}
  The audit page (filter bar with Coder's presets, chart, export, live view):
    http://$api/
    http://$api/?q=resource_type:workspace+action:delete
  CLI (Coder's UI presets):
    $bin query "resource_type:workspace action:create"
    $bin query "resource_type:template action:create"
    $bin query "resource_type:user action:delete"
    $bin query "resource_type:workspace_build action:start build_reason:initiator"
    $bin query "resource_type:api_key action:login"
    $bin query --parse "username:me date_from:2026-01-01"      # the parsed filter
    $bin query --sql "resource_target:dev"                     # the parameterized SQL
  API:
    curl -s 'http://$api/api/v2/audit?q=resource_type:workspace+action:delete&limit=5'
    curl -s 'http://$api/api/v2/audit/export?q=action:login&format=csv' | head
  Metrics and health:
    http://127.0.0.1:9464/metrics  http://127.0.0.1:9465/metrics   (ingesters)
    http://$api/metrics  http://$api/healthz  http://$api/readyz   (API)
  Tamper evidence (docs/integrity.md):
    $bin verify --public-key $key.pub
    $bin verify --public-key $key.pub --event <id> --format json   # one event's proof
    curl -s "http://$api/api/v2/audit/<id>/proof"
  Dead letters:
    $bin dlq inspect
  Logs: $stack/logs/   Stop everything: make down

${bold}== the audit page: http://$api/${plain}
GUIDE
