-- Migration 0001: the audit log table.
--
-- `{database}` and `{table}` are replaced by `auditlog migrate` with validated identifiers
-- (`[A-Za-z_][A-Za-z0-9_]*`); nothing else in this file is templated.
--
-- The workload: auditors page newest-first (`ORDER BY time DESC, id DESC LIMIT n`) through
-- equality filters on organization, resource type, action, actor, target, resource id and
-- request id, and through date ranges; a capped count (at most 2,001 rows) goes with each page.

CREATE DATABASE IF NOT EXISTS {database};

CREATE TABLE IF NOT EXISTS {database}.{table}
(
    -- UUID v7 from the producer: time-ordered, and the tie-breaker of the page order.
    id UUID,
    -- Microseconds, as the event carries them. Delta suits the near-sorted column.
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    request_id UUID,

    -- The organization as it was at the time of the event (nil UUID = site-wide).
    -- Names repeat endlessly: LowCardinality keeps them as small dictionary indices.
    organization_id UUID,
    organization_name LowCardinality(String),
    organization_display_name LowCardinality(String),
    organization_icon LowCardinality(String),

    -- The actor as they were at the time (nil user_id = no user, e.g. a background job).
    -- Thousands to millions of users: plain String with ZSTD, not LowCardinality.
    user_id UUID,
    user_username String CODEC(ZSTD(1)),
    user_email String CODEC(ZSTD(1)),
    user_name String CODEC(ZSTD(1)),

    ip String CODEC(ZSTD(1)),
    user_agent String CODEC(ZSTD(1)),

    -- Closed vocabularies stored as strings (a new value never needs a migration).
    resource_type LowCardinality(String),
    resource_id UUID,
    resource_target String CODEC(ZSTD(1)),
    resource_icon LowCardinality(String),
    action LowCardinality(String),
    -- JSON text, read only when a row is shown: compress hard.
    diff String CODEC(ZSTD(3)),
    status_code Int32,
    additional_fields String CODEC(ZSTD(3)),
    -- '' when the event has none.
    build_reason LowCardinality(String),

    -- Equality filters the sorting key cannot serve skip granules through these. The
    -- case-insensitive filters compare `lower(column)`, so the indexes are on that expression.
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
-- ReplacingMergeTree collapses rows with the same sorting key, so a duplicate that slipped
-- past insert deduplication (beyond its window) is removed by merges, and queries that need
-- certainty read with FINAL. Duplicates of one event are identical, so no version column.
ENGINE = ReplacingMergeTree
-- Monthly partitions: few enough parts for billions of rows, and retention drops whole parts.
PARTITION BY toYYYYMM(time)
-- Newest-first pages read the key in reverse order and stop after `limit` rows
-- (optimize_read_in_order); date ranges prune by the primary index; id makes each key unique
-- (which is what ReplacingMergeTree deduplicates on) and is the page order's tie-breaker.
ORDER BY (time, id)
SETTINGS
    -- Insert deduplication for a non-replicated table is off unless this window is set: the
    -- ingester retries a batch with the same insert_deduplication_token, and ClickHouse keeps
    -- the hashes of the last N blocks to recognise it. 10,000 blocks covers hours of batches.
    non_replicated_deduplication_window = 10000,
    -- Retention (a TTL, off by default) drops whole parts instead of rewriting them.
    ttl_only_drop_parts = 1;
