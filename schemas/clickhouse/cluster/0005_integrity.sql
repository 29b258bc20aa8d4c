-- Cluster variant of migration 0005 (see ../0005_integrity.sql for the reasons). The source
-- position goes on the local tables and the Distributed one; digests and checkpoints are one
-- replicated copy per shard behind Distributed tables, sharded by partition and by topic.
ALTER TABLE {database}.{table}_local ON CLUSTER {cluster}
    ADD COLUMN IF NOT EXISTS source_partition Int32,
    ADD COLUMN IF NOT EXISTS source_offset Int64,
    MODIFY ORDER BY (time, id, source_partition, source_offset);

-- A column added to the sorting key cannot come with a default; older parts read the
-- default that is set now, so rows from before the migration say -1, not partition 0.
ALTER TABLE {database}.{table}_local ON CLUSTER {cluster}
    MODIFY COLUMN source_partition Int32 DEFAULT -1,
    MODIFY COLUMN source_offset Int64 DEFAULT -1;

ALTER TABLE {database}.{table}_local ON CLUSTER {cluster}
    ADD INDEX IF NOT EXISTS idx_source_offset source_offset TYPE minmax GRANULARITY 1;

ALTER TABLE {database}.{table} ON CLUSTER {cluster}
    ADD COLUMN IF NOT EXISTS source_partition Int32 DEFAULT -1,
    ADD COLUMN IF NOT EXISTS source_offset Int64 DEFAULT -1;

CREATE TABLE IF NOT EXISTS {database}.ingest_digests_local ON CLUSTER {cluster}
(
    topic LowCardinality(String),
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    num_messages UInt32,
    num_events UInt32,
    skipped_offsets Array(Int64),
    dead_letter_offsets Array(Int64),
    dead_letter_hashes Array(FixedString(32)),
    leaf_prefixes String CODEC(NONE),
    min_time DateTime64(6, 'UTC'),
    max_time DateTime64(6, 'UTC'),
    root FixedString(32),
    previous_digest FixedString(32),
    digest FixedString(32),
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/ingest_digests_local', '{replica}')
ORDER BY (topic, partition, first_offset, last_offset);

CREATE TABLE IF NOT EXISTS {database}.ingest_digests ON CLUSTER {cluster}
AS {database}.ingest_digests_local
ENGINE = Distributed({cluster}, {database}, ingest_digests_local, cityHash64(topic, partition));

CREATE TABLE IF NOT EXISTS {database}.ingest_checkpoints_local ON CLUSTER {cluster}
(
    topic LowCardinality(String),
    key_id LowCardinality(String),
    signed_at DateTime64(6, 'UTC'),
    body String,
    signature String,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/ingest_checkpoints_local', '{replica}')
ORDER BY (topic, signed_at, key_id);

CREATE TABLE IF NOT EXISTS {database}.ingest_checkpoints ON CLUSTER {cluster}
AS {database}.ingest_checkpoints_local
ENGINE = Distributed({cluster}, {database}, ingest_checkpoints_local, cityHash64(topic));
