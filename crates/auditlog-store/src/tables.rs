//! The names of the tables and views the migrations create, for the code that reads or
//! writes them by name.
//!
//! The base table's name is configurable (`--clickhouse-table`, [`AUDIT_LOGS`] by default)
//! and names the lookup after it; every other name is fixed by the migrations. On a cluster
//! each table that holds rows is `<name>_local` on every shard, and `<name>` is the
//! Distributed table over them, so the names here are the ones to query either way.

/// The base table of audit events when none is configured (migration 0001).
pub const AUDIT_LOGS: &str = "audit_logs";

/// Batch intents from before digests existed (migration 0002); still replayed.
pub const INGEST_BATCHES: &str = "ingest_batches";

/// One row per batch: its offset range and its digest (migration 0005).
pub const INGEST_DIGESTS: &str = "ingest_digests";

/// Signed checkpoints of the digest chains (migration 0005).
pub const INGEST_CHECKPOINTS: &str = "ingest_checkpoints";

/// The analysts' view: each event once, with stable columns (migration 0004).
pub const EVENTS: &str = "events";

/// Events per day by organization, resource type, action and status class (migration 0004;
/// counted by `(time, id)` pair since 0006).
pub const DAILY_EVENTS_ROLLUP: &str = "daily_events_rollup";
/// The materialized view that feeds [`DAILY_EVENTS_ROLLUP`].
pub const DAILY_EVENTS_MV: &str = "daily_events_mv";
/// The view that merges [`DAILY_EVENTS_ROLLUP`]'s states.
pub const DAILY_EVENTS: &str = "daily_events";

/// Failed requests per actor and IP per hour (migration 0004; counted by `(time, id)` pair
/// since 0006).
pub const FAILED_REQUESTS_HOURLY_ROLLUP: &str = "failed_requests_hourly_rollup";
/// The materialized view that feeds [`FAILED_REQUESTS_HOURLY_ROLLUP`].
pub const FAILED_REQUESTS_HOURLY_MV: &str = "failed_requests_hourly_mv";
/// The view that merges [`FAILED_REQUESTS_HOURLY_ROLLUP`]'s states.
pub const FAILED_REQUESTS_HOURLY: &str = "failed_requests_hourly";

/// First and last seen per actor and IP (migration 0004).
pub const ACTOR_IPS_ROLLUP: &str = "actor_ips_rollup";
/// The materialized view that feeds [`ACTOR_IPS_ROLLUP`].
pub const ACTOR_IPS_MV: &str = "actor_ips_mv";
/// The view that merges [`ACTOR_IPS_ROLLUP`]'s states.
pub const ACTOR_IPS: &str = "actor_ips";

/// The rollups of migration 0004: the tables besides the base table that hold event rows, so
/// row policies go on them.
pub const ROLLUP_TABLES: [&str; 3] = [
    DAILY_EVENTS_ROLLUP,
    FAILED_REQUESTS_HOURLY_ROLLUP,
    ACTOR_IPS_ROLLUP,
];

/// The views of migration 0004 that analysts read.
pub const ANALYST_VIEWS: [&str; 4] = [EVENTS, DAILY_EVENTS, FAILED_REQUESTS_HOURLY, ACTOR_IPS];

/// Where `auditlog migrate` records the applied migrations.
pub const MIGRATIONS_TABLE: &str = "auditlog_migrations";

/// The lookup table that serves point filters on `table` (migration 0003).
pub fn lookup_table(table: &str) -> String {
    format!("{table}_lookup")
}

/// The materialized view that feeds [`lookup_table`] from `table` (migration 0003).
pub fn lookup_feed(table: &str) -> String {
    format!("{table}_lookup_feed")
}

/// Matching rows per hour and coarse filter key, for the chart (migration 0007).
pub fn hourly_table(table: &str) -> String {
    format!("{table}_hourly")
}

/// The materialized view that feeds [`hourly_table`] from `table` (migration 0007).
pub fn hourly_feed(table: &str) -> String {
    format!("{table}_hourly_feed")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::migrate::twins::Schema;
    use crate::{MIGRATIONS, SchemaTarget};

    /// Every table and view the single-server migrations create is named here, and nothing
    /// else is (the cluster migrations create the same, as `migrate::twins` checks).
    #[test]
    fn the_names_are_exactly_those_the_migrations_create() {
        let target = SchemaTarget {
            database: "db".into(),
            table: AUDIT_LOGS.into(),
            retention_days: None,
            cluster: None,
        };
        let schema = Schema::of(&target, MIGRATIONS);
        let created: BTreeSet<String> = schema.object_names().collect();
        let named: BTreeSet<String> = [
            AUDIT_LOGS,
            INGEST_BATCHES,
            INGEST_DIGESTS,
            INGEST_CHECKPOINTS,
            DAILY_EVENTS_MV,
            FAILED_REQUESTS_HOURLY_MV,
            ACTOR_IPS_MV,
        ]
        .into_iter()
        .chain(ROLLUP_TABLES)
        .chain(ANALYST_VIEWS)
        .map(str::to_owned)
        .chain([
            lookup_table(AUDIT_LOGS),
            lookup_feed(AUDIT_LOGS),
            hourly_table(AUDIT_LOGS),
            hourly_feed(AUDIT_LOGS),
        ])
        .collect();
        assert_eq!(created, named);
        for view in ANALYST_VIEWS {
            assert!(schema.views.contains_key(view), "{view} is a view");
        }
        for table in ROLLUP_TABLES {
            assert!(schema.tables.contains_key(table), "{table} is a table");
        }
    }
}
