-- Migration 0002: batch intents, which make the ingester's batch boundaries deterministic.
--
-- Before inserting a batch, the ingester records its offset range here. A partition that is
-- consumed again (after a crash, a restart or a rebalance) first replays the recorded ranges
-- exactly, so each re-sent batch carries the same insert_deduplication_token as the first
-- attempt and ClickHouse drops it. A few rows per batch; old ones expire.

CREATE TABLE IF NOT EXISTS {database}.ingest_batches
(
    topic LowCardinality(String),
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    num_messages UInt32,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, first_offset, last_offset)
-- Replays only ever look just past the committed offset; a week is far beyond any outage
-- the consumer group's own offset retention would survive.
TTL toDateTime(recorded_at) + INTERVAL 7 DAY;
