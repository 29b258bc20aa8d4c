-- Migration 0006: the rollups count events by their (time, id) pair (docs/schema.md, "One
-- event: its id and its time").
--
-- `{database}` and `{table}` are replaced by `auditlog migrate` with validated identifiers.
--
-- 0004's rollups kept `uniqExactState(id)`, so a second event stored under a known id at
-- another time (a producer that re-stamped a re-send, a generator run twice with one seed)
-- counted once, while pages, counts and the chart show it. The new states count distinct
-- (time, id) pairs: copies of one event still add nothing (same pair), a second event does.
-- `uniqExact` of two arguments keeps a 128-bit hash of each pair, the 16 bytes per entry the
-- id states took.
--
-- A state column cannot change its type in place, so each rollup gets a new column, its
-- materialized view is made again to feed only that one, `migrate` backfills it from the
-- base table right after the view exists (BACKFILLED_VERSIONS, one backfill per view), the
-- merging view is pointed at it, and the old column goes. Rerunning any prefix of this file
-- is harmless: the backfill covers rows inserted while a view was being replaced, and states
-- are idempotent. While the backfill runs, the merging views still read the old column
-- (the events inserted meanwhile show up once the view is pointed at the new one).
-- `actor_ips` keeps only min and max times, which no id rule changes.

-- Rollup 1: events per day.
ALTER TABLE {database}.daily_events_rollup
    ADD COLUMN IF NOT EXISTS event_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID);

DROP VIEW IF EXISTS {database}.daily_events_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.daily_events_mv
TO {database}.daily_events_rollup AS
SELECT
    toDate(time) AS day,
    organization_id,
    resource_type,
    action,
    concat(toString(intDiv(status_code, 100)), 'xx') AS status_class,
    anyLast(organization_name) AS organization_name,
    uniqExactState(time, id) AS event_keys
FROM {database}.{table}
GROUP BY day, organization_id, resource_type, action, status_class;

CREATE OR REPLACE VIEW {database}.daily_events AS
SELECT
    day,
    organization_id,
    anyLast(organization_name) AS organization_name,
    resource_type,
    action,
    status_class,
    uniqExactMerge(event_keys) AS events
FROM {database}.daily_events_rollup
GROUP BY day, organization_id, resource_type, action, status_class;

ALTER TABLE {database}.daily_events_rollup
    DROP COLUMN IF EXISTS events;

-- Rollup 2: failed requests per actor and IP per hour.
ALTER TABLE {database}.failed_requests_hourly_rollup
    ADD COLUMN IF NOT EXISTS failure_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID);

DROP VIEW IF EXISTS {database}.failed_requests_hourly_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.failed_requests_hourly_mv
TO {database}.failed_requests_hourly_rollup AS
SELECT
    toStartOfHour(time) AS hour,
    organization_id,
    user_id,
    ip,
    anyLast(user_username) AS username,
    uniqExactState(time, id) AS failure_keys,
    groupUniqArrayState(status_code) AS status_codes
FROM {database}.{table}
WHERE status_code >= 400
GROUP BY hour, organization_id, user_id, ip;

CREATE OR REPLACE VIEW {database}.failed_requests_hourly AS
SELECT
    hour,
    organization_id,
    user_id,
    anyLast(username) AS username,
    ip,
    uniqExactMerge(failure_keys) AS failures,
    arraySort(groupUniqArrayMerge(status_codes)) AS status_codes
FROM {database}.failed_requests_hourly_rollup
GROUP BY hour, organization_id, user_id, ip;

ALTER TABLE {database}.failed_requests_hourly_rollup
    DROP COLUMN IF EXISTS failures;
