-- Migration 0003 (cluster): the lookup table that serves point filters; see
-- ../0003_lookup.sql for why. Each shard feeds its own lookup rows from its own rows, so an
-- event and its lookup rows live on the same shard, and a lookup query runs shard by shard
-- (`distributed_product_mode = 'local'`).

CREATE TABLE IF NOT EXISTS {database}.{table}_lookup_local ON CLUSTER {cluster}
(
    -- request_id, resource_id, resource_target, username, user_id, email, organization_id
    key LowCardinality(String),
    value String CODEC(ZSTD(1)),
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    id UUID,
    organization_id UUID,
    resource_type LowCardinality(String),
    action LowCardinality(String),
    build_reason LowCardinality(String)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}_lookup_local', '{replica}')
-- The base table's partitions: retention drops the same months from both.
PARTITION BY toYYYYMM(time)
ORDER BY (key, value, time, id)
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS {database}.{table}_lookup ON CLUSTER {cluster}
AS {database}.{table}_lookup_local
ENGINE = Distributed({cluster}, {database}, {table}_lookup_local, cityHash64(id));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_lookup_feed ON CLUSTER {cluster}
TO {database}.{table}_lookup_local AS
SELECT
    pair.1 AS key,
    pair.2 AS value,
    time,
    id,
    organization_id,
    resource_type,
    action,
    build_reason
FROM {database}.{table}_local
ARRAY JOIN [
    ('request_id', toString(request_id)),
    ('resource_id', toString(resource_id)),
    ('resource_target', lower(resource_target)),
    ('username', lower(user_username)),
    ('user_id', toString(user_id)),
    ('email', lower(user_email)),
    ('organization_id', toString(organization_id))
] AS pair;
