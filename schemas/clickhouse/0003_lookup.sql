-- Migration 0003: the lookup table that serves point filters.
--
-- `audit_logs` is sorted by time, so a filter on one user, one resource or one request has
-- to read every granule its skip indexes cannot rule out, and a bloom filter rules out far
-- fewer than a B-tree would. This table holds one row per event and point key, sorted by
-- (key, value, time, id): the newest matches of any value, rare or common, are one short
-- range read in order, and the page then fetches exactly those events from `audit_logs` by
-- their sorting key. The columns after `id` are the filter's other, coarse predicates, so a
-- point filter combined with them is answered here too.
--
-- Fed by a materialized view, so it holds a row for every inserted row, duplicates included:
-- readers deduplicate by (time, id), as they do on `audit_logs`. `auditlog migrate` backfills
-- the rows stored before this migration by running the view's query once over the table
-- (BACKFILLED_VERSIONS); rows inserted meanwhile appear twice, which readers tolerate. Values are what the filters
-- compare: the text of a UUID, and the lowercase text of a name.

CREATE TABLE IF NOT EXISTS {database}.{table}_lookup
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
ENGINE = ReplacingMergeTree
-- The base table's partitions: retention drops the same months from both.
PARTITION BY toYYYYMM(time)
ORDER BY (key, value, time, id)
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_lookup_feed
TO {database}.{table}_lookup AS
SELECT
    pair.1 AS key,
    pair.2 AS value,
    time,
    id,
    organization_id,
    resource_type,
    action,
    build_reason
FROM {database}.{table}
ARRAY JOIN [
    ('request_id', toString(request_id)),
    ('resource_id', toString(resource_id)),
    ('resource_target', lower(resource_target)),
    ('username', lower(user_username)),
    ('user_id', toString(user_id)),
    ('email', lower(user_email)),
    ('organization_id', toString(organization_id))
] AS pair;
