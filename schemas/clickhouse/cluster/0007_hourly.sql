-- Cluster variant of migration 0007 (see ../0007_hourly.sql for the reasons). `{database}`,
-- `{table}` and `{cluster}` are filled in by auditlog; `{shard}` and `{replica}` are the
-- servers' own macros.
--
-- As for the rollups of 0004: the rows live in `{table}_hourly_local` on every shard, fed by a
-- materialized view on `{table}_local`, with the Distributed `{table}_hourly` over them. Sums
-- add across shards, and the reader checks each day against the Distributed base table.

CREATE TABLE IF NOT EXISTS {database}.{table}_hourly_local ON CLUSTER {cluster}
(
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    organization_id UUID,
    resource_type LowCardinality(String),
    action LowCardinality(String),
    build_reason LowCardinality(String),
    rows SimpleAggregateFunction(sum, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}_hourly_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (time, organization_id, resource_type, action, build_reason)
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_hourly_feed ON CLUSTER {cluster}
TO {database}.{table}_hourly_local AS
SELECT
    toStartOfHour(time) AS time,
    organization_id,
    resource_type,
    action,
    build_reason,
    count() AS rows
FROM {database}.{table}_local
GROUP BY time, organization_id, resource_type, action, build_reason;

CREATE TABLE IF NOT EXISTS {database}.{table}_hourly ON CLUSTER {cluster}
AS {database}.{table}_hourly_local
ENGINE = Distributed({cluster}, {database}, {table}_hourly_local, cityHash64(organization_id, time));
