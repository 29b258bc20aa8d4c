-- Cluster variant of migration 0002 (see ../0002_ingest_batches.sql). Intents are few and
-- read by partition, so one replicated copy per shard behind a Distributed table suffices.

CREATE TABLE IF NOT EXISTS {database}.ingest_batches_local ON CLUSTER {cluster}
(
    topic LowCardinality(String),
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    num_messages UInt32,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/ingest_batches_local', '{replica}')
ORDER BY (topic, partition, first_offset, last_offset)
TTL toDateTime(recorded_at) + INTERVAL 7 DAY;

CREATE TABLE IF NOT EXISTS {database}.ingest_batches ON CLUSTER {cluster}
AS {database}.ingest_batches_local
ENGINE = Distributed({cluster}, {database}, ingest_batches_local, cityHash64(topic, partition));
