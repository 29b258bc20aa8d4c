-- Migration 0004: what analysts query (docs/analysts.md): one view that yields each event
-- exactly once with stable, documented columns, and three rollups that answer the recurring
-- questions without scanning the base table.
--
-- `{database}` and `{table}` are replaced by `auditlog migrate` with validated identifiers.
--
-- Exactness under duplicates. Copies of one event are byte-identical rows with the same
-- (time, id), and may sit in the base table until a merge removes them. Therefore:
-- - the view reads the base table with FINAL, which collapses them at read time,
-- - the rollups count events as `uniqExactState(id)` and keep times as min/max, so a
--   duplicate insert, an insert retried after a timeout (materialized views fire on every
--   inserted block, even one the base table dropped as a duplicate), or a backfill run
--   again adds nothing. Readers merge the states: the `daily_events`,
--   `failed_requests_hourly` and `actor_ips` views do it for them.
--
-- Every rollup keeps `organization_id` in its key, so the organization-scoped row policies
-- of `auditlog access-ddl` filter the rollups exactly as they filter events.

-- The analysts' view. FINAL runs per partition in parallel; the partitions are months of
-- `time`, which is in the key, so copies never straddle two partitions and skipping the
-- cross-partition merge is exact. Columns a query does not name are not computed, so the
-- parsed diff and additional fields cost nothing unless asked for.
CREATE VIEW IF NOT EXISTS {database}.events AS
SELECT
    id,
    time,
    toDate(time) AS date,
    request_id,
    organization_id,
    organization_name,
    organization_display_name,
    user_id,
    user_username AS username,
    user_email,
    user_name,
    -- No user, or a subsystem acting on the user's behalf (autostart, dormancy, ...).
    user_id = toUUID('00000000-0000-0000-0000-000000000000')
        OR JSONHas(base.additional_fields, 'automatic_actor') AS is_automatic,
    JSONExtractString(base.additional_fields, 'automatic_actor') AS automatic_actor,
    ip,
    user_agent,
    resource_type,
    resource_id,
    resource_target,
    action,
    status_code,
    concat(toString(intDiv(status_code, 100)), 'xx') AS status_class,
    status_code >= 400 AS failed,
    build_reason,
    -- Field name -> (old, new, secret). Values as text: a JSON string unquoted, null as '',
    -- anything else as its JSON; a secret field has both empty.
    JSONExtract(base.diff, 'Map(String, Tuple(old String, new String, secret Bool))') AS diff,
    mapKeys(diff) AS diff_fields,
    mapKeys(mapFilter((field, change) -> change.secret, diff)) AS diff_secret_fields,
    -- Key -> value as text, the same way.
    JSONExtract(base.additional_fields, 'Map(String, String)') AS additional_fields,
    -- The stored JSON, for whatever the maps do not say and for the cheapest full scans.
    base.diff AS diff_json,
    base.additional_fields AS additional_fields_json
FROM {database}.{table} AS base FINAL
SETTINGS do_not_merge_across_partitions_select_final = 1;

-- Rollup 1: events per day by organization, resource type, action and status class.
CREATE TABLE IF NOT EXISTS {database}.daily_events_rollup
(
    day Date,
    organization_id UUID,
    resource_type LowCardinality(String),
    action LowCardinality(String),
    status_class LowCardinality(String),
    -- The organization's name on its most recent event of the day; names are shown, ids keyed.
    organization_name SimpleAggregateFunction(anyLast, String),
    events AggregateFunction(uniqExact, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, organization_id, resource_type, action, status_class);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.daily_events_mv
TO {database}.daily_events_rollup AS
SELECT
    toDate(time) AS day,
    organization_id,
    resource_type,
    action,
    concat(toString(intDiv(status_code, 100)), 'xx') AS status_class,
    anyLast(organization_name) AS organization_name,
    uniqExactState(id) AS events
FROM {database}.{table}
GROUP BY day, organization_id, resource_type, action, status_class;

CREATE VIEW IF NOT EXISTS {database}.daily_events AS
SELECT
    day,
    organization_id,
    anyLast(organization_name) AS organization_name,
    resource_type,
    action,
    status_class,
    uniqExactMerge(events) AS events
FROM {database}.daily_events_rollup
GROUP BY day, organization_id, resource_type, action, status_class;

-- Rollup 2: failed requests (status >= 400) per actor and IP per hour.
CREATE TABLE IF NOT EXISTS {database}.failed_requests_hourly_rollup
(
    hour DateTime('UTC'),
    organization_id UUID,
    user_id UUID,
    ip String,
    username SimpleAggregateFunction(anyLast, String),
    failures AggregateFunction(uniqExact, UUID),
    status_codes AggregateFunction(groupUniqArray, Int32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, organization_id, user_id, ip);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.failed_requests_hourly_mv
TO {database}.failed_requests_hourly_rollup AS
SELECT
    toStartOfHour(time) AS hour,
    organization_id,
    user_id,
    ip,
    anyLast(user_username) AS username,
    uniqExactState(id) AS failures,
    groupUniqArrayState(status_code) AS status_codes
FROM {database}.{table}
WHERE status_code >= 400
GROUP BY hour, organization_id, user_id, ip;

CREATE VIEW IF NOT EXISTS {database}.failed_requests_hourly AS
SELECT
    hour,
    organization_id,
    user_id,
    anyLast(username) AS username,
    ip,
    uniqExactMerge(failures) AS failures,
    arraySort(groupUniqArrayMerge(status_codes)) AS status_codes
FROM {database}.failed_requests_hourly_rollup
GROUP BY hour, organization_id, user_id, ip;

-- Rollup 3: first and last seen per actor and IP (and organization, for the row policies).
CREATE TABLE IF NOT EXISTS {database}.actor_ips_rollup
(
    user_id UUID,
    ip String,
    organization_id UUID,
    username SimpleAggregateFunction(anyLast, String),
    first_seen SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    -- No count of events: with IPs that vary, a uniqExact state per actor and IP holds nearly
    -- every id, which made this the costliest rollup to feed. First and last seen are what it
    -- is for, and min and max are idempotent by themselves.
    last_seen SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (user_id, ip, organization_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.actor_ips_mv
TO {database}.actor_ips_rollup AS
SELECT
    user_id,
    ip,
    organization_id,
    anyLast(user_username) AS username,
    min(time) AS first_seen,
    max(time) AS last_seen
FROM {database}.{table}
GROUP BY user_id, ip, organization_id;

CREATE VIEW IF NOT EXISTS {database}.actor_ips AS
SELECT
    user_id,
    anyLast(username) AS username,
    ip,
    organization_id,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen
FROM {database}.actor_ips_rollup
GROUP BY user_id, ip, organization_id;
