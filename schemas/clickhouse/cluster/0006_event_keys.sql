-- Cluster variant of migration 0006 (see ../0006_event_keys.sql for the reasons). `{database}`,
-- `{table}` and `{cluster}` are filled in by auditlog; `{shard}` and `{replica}` are the
-- servers' own macros.
--
-- As in 0004: each rollup's rows live in `<name>_local`, fed by a materialized view on
-- `{table}_local`, with the Distributed `<name>` over it, whose columns change with the
-- shards' own. All rows of one id are on one shard (sharding by cityHash64(id)), and merging
-- uniqExact states across shards is a set union, so the (time, id) counts stay exact.

-- Rollup 1: events per day.
ALTER TABLE {database}.daily_events_rollup_local ON CLUSTER {cluster}
    ADD COLUMN IF NOT EXISTS event_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID);

ALTER TABLE {database}.daily_events_rollup ON CLUSTER {cluster}
    ADD COLUMN IF NOT EXISTS event_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID);

DROP VIEW IF EXISTS {database}.daily_events_mv ON CLUSTER {cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.daily_events_mv ON CLUSTER {cluster}
TO {database}.daily_events_rollup_local AS
SELECT
    toDate(time) AS day,
    organization_id,
    resource_type,
    action,
    concat(toString(intDiv(status_code, 100)), 'xx') AS status_class,
    anyLast(organization_name) AS organization_name,
    uniqExactState(time, id) AS event_keys
FROM {database}.{table}_local
GROUP BY day, organization_id, resource_type, action, status_class;

CREATE OR REPLACE VIEW {database}.daily_events ON CLUSTER {cluster} AS
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

ALTER TABLE {database}.daily_events_rollup ON CLUSTER {cluster}
    DROP COLUMN IF EXISTS events;

ALTER TABLE {database}.daily_events_rollup_local ON CLUSTER {cluster}
    DROP COLUMN IF EXISTS events;

-- Rollup 2: failed requests per actor and IP per hour.
ALTER TABLE {database}.failed_requests_hourly_rollup_local ON CLUSTER {cluster}
    ADD COLUMN IF NOT EXISTS failure_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID);

ALTER TABLE {database}.failed_requests_hourly_rollup ON CLUSTER {cluster}
    ADD COLUMN IF NOT EXISTS failure_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID);

DROP VIEW IF EXISTS {database}.failed_requests_hourly_mv ON CLUSTER {cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.failed_requests_hourly_mv ON CLUSTER {cluster}
TO {database}.failed_requests_hourly_rollup_local AS
SELECT
    toStartOfHour(time) AS hour,
    organization_id,
    user_id,
    ip,
    anyLast(user_username) AS username,
    uniqExactState(time, id) AS failure_keys,
    groupUniqArrayState(status_code) AS status_codes
FROM {database}.{table}_local
WHERE status_code >= 400
GROUP BY hour, organization_id, user_id, ip;

CREATE OR REPLACE VIEW {database}.failed_requests_hourly ON CLUSTER {cluster} AS
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

ALTER TABLE {database}.failed_requests_hourly_rollup ON CLUSTER {cluster}
    DROP COLUMN IF EXISTS failures;

ALTER TABLE {database}.failed_requests_hourly_rollup_local ON CLUSTER {cluster}
    DROP COLUMN IF EXISTS failures;
