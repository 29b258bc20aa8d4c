-- Cluster variant of migration 0001, for a replicated, sharded ClickHouse cluster.
-- Apply with `auditlog migrate --cluster <name>`; `{database}`, `{table}` and `{cluster}` are
-- filled in by auditlog. `{shard}` and `{replica}` are the servers' own macros (config.xml
-- <macros>), left for ClickHouse to expand.
--
-- Layout: `{table}_local` holds each shard's rows (ReplicatedReplacingMergeTree, same
-- columns, codecs, indexes and sorting key as the single-server table, see
-- ../0001_audit_logs.sql for the reasons); `{table}` is a Distributed table over it, which
-- the ingester writes to and auditors read from. Sharding by cityHash64(id) keeps every copy
-- of an event on one shard, so ReplacingMergeTree can still collapse duplicates and FINAL
-- stays shard-local.

CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster};

CREATE TABLE IF NOT EXISTS {database}.{table}_local ON CLUSTER {cluster}
(
    id UUID,
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    request_id UUID,
    organization_id UUID,
    organization_name LowCardinality(String),
    organization_display_name LowCardinality(String),
    organization_icon LowCardinality(String),
    user_id UUID,
    user_username String CODEC(ZSTD(1)),
    user_email String CODEC(ZSTD(1)),
    user_name String CODEC(ZSTD(1)),
    ip String CODEC(ZSTD(1)),
    user_agent String CODEC(ZSTD(1)),
    resource_type LowCardinality(String),
    resource_id UUID,
    resource_target String CODEC(ZSTD(1)),
    resource_icon LowCardinality(String),
    action LowCardinality(String),
    diff String CODEC(ZSTD(3)),
    status_code Int32,
    additional_fields String CODEC(ZSTD(3)),
    build_reason LowCardinality(String),
    INDEX idx_organization_id organization_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_resource_type resource_type TYPE set(64) GRANULARITY 1,
    INDEX idx_action action TYPE set(32) GRANULARITY 1,
    INDEX idx_build_reason build_reason TYPE set(32) GRANULARITY 1,
    INDEX idx_resource_id resource_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_username lower(user_username) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_email lower(user_email) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_resource_target lower(resource_target) TYPE bloom_filter(0.01) GRANULARITY 1
)
-- Replicated tables deduplicate inserts by default (replicated_deduplication_window), so
-- the ingester's insert_deduplication_token works without extra settings here.
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (time, id)
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster}
AS {database}.{table}_local
-- The ingester sets distributed_foreground_insert=1 on its inserts in cluster mode, so an
-- acknowledged batch is on its shard, not only queued on the node that received it.
ENGINE = Distributed({cluster}, {database}, {table}_local, cityHash64(id));
