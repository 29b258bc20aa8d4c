-- Migration 0007: matching events per hour, for the audit page's chart.
--
-- The chart counts the filter's events over the whole range the filter allows: a year of
-- history is every row, and counting distinct (time, id) keys over 10M rows took seconds. This
-- rollup holds one row per hour and combination of the chart's coarse filter keys
-- (organization, resource type, action, build reason), whatever the number of events, so a
-- year's chart reads some thousands of rows.
--
-- It counts rows, copies included: a copy of an event (the same id and time stored twice) is
-- counted twice here. The reader (auditlog-query's histogram) therefore uses an hour's count
-- only for days it has checked against the table itself: a day whose rows here, rows in the
-- table and distinct (time, id) keys in the table all agree holds no copy and nothing
-- missing, so its counts are exact. Any other day (an open day still being written, a day
-- with a copy, a day this view counted twice because a backfill overlapped an insert) is
-- counted from the table. The backfill is therefore safe to repeat.
--
-- `time` is the hour's start, named like the table's column so that the filter's date
-- predicates apply unchanged.

CREATE TABLE IF NOT EXISTS {database}.{table}_hourly
(
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    organization_id UUID,
    resource_type LowCardinality(String),
    action LowCardinality(String),
    build_reason LowCardinality(String),
    rows SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (time, organization_id, resource_type, action, build_reason)
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_hourly_feed
TO {database}.{table}_hourly AS
SELECT
    toStartOfHour(time) AS time,
    organization_id,
    resource_type,
    action,
    build_reason,
    count() AS rows
FROM {database}.{table}
GROUP BY time, organization_id, resource_type, action, build_reason;
