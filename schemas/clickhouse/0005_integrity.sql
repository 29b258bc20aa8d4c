-- Migration 0005: tamper evidence (docs/integrity.md).
--
-- Every row records where it came from (its Kafka partition and offset), so a verifier can
-- map it to the batch that wrote it. The sorting key grows by the source position: a copy of
-- an event that reached Kafka twice (a re-sent event, a dead letter replayed twice) is then
-- kept under its own offset instead of being merged away, so no offset a digest covers ever
-- loses its row. Queries already show one row per (time, id), so nothing visible changes;
-- copies with the same partition and offset (a replayed batch) still collapse. Rows written
-- before this migration keep partition and offset -1.
ALTER TABLE {database}.{table}
    ADD COLUMN IF NOT EXISTS source_partition Int32,
    ADD COLUMN IF NOT EXISTS source_offset Int64,
    MODIFY ORDER BY (time, id, source_partition, source_offset);

-- A column added to the sorting key cannot come with a default; older parts read the
-- default that is set now, so rows from before the migration say -1, not partition 0.
ALTER TABLE {database}.{table}
    MODIFY COLUMN source_partition Int32 DEFAULT -1,
    MODIFY COLUMN source_offset Int64 DEFAULT -1;

-- Offsets grow with ingestion, so a granule's offsets span a narrow range: the verifier
-- reads one batch's rows without scanning the table.
ALTER TABLE {database}.{table}
    ADD INDEX IF NOT EXISTS idx_source_offset source_offset TYPE minmax GRANULARITY 1;

-- One row per batch, recorded before the batch's insert: its offset range (which makes batch
-- boundaries deterministic across crashes, as ingest_batches did) and its digest, chained per
-- partition. Kept for ever: a row per batch, and the chain is the proof.
CREATE TABLE IF NOT EXISTS {database}.ingest_digests
(
    topic LowCardinality(String),
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    -- Leaves (stored events and dead letters) in the batch.
    num_messages UInt32,
    num_events UInt32,
    -- Offsets in the range that had no message (transaction markers, compaction).
    skipped_offsets Array(Int64),
    -- Dead-lettered offsets and the SHA-256 of their raw payloads.
    dead_letter_offsets Array(Int64),
    dead_letter_hashes Array(FixedString(32)),
    -- The first 8 bytes of every leaf, in offset order: not part of the proof (the root is),
    -- but they let the verifier name which event of a failing batch was changed.
    leaf_prefixes String CODEC(NONE),
    -- The events' time range, to tell expired rows from deleted ones.
    min_time DateTime64(6, 'UTC'),
    max_time DateTime64(6, 'UTC'),
    root FixedString(32),
    previous_digest FixedString(32),
    digest FixedString(32),
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (topic, partition, first_offset, last_offset)
-- A retried record carries a deduplication token; without a window it would be kept twice.
SETTINGS non_replicated_deduplication_window = 10000;

-- Signed checkpoints: the chain heads an ingester owned, signed with Ed25519. The same
-- envelopes go to the Kafka topic audit-events-checkpoints, a copy outside ClickHouse.
CREATE TABLE IF NOT EXISTS {database}.ingest_checkpoints
(
    topic LowCardinality(String),
    key_id LowCardinality(String),
    signed_at DateTime64(6, 'UTC'),
    -- The exact signed text, and the base64 Ed25519 signature over it.
    body String,
    signature String,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (topic, signed_at, key_id)
SETTINGS non_replicated_deduplication_window = 1000;
