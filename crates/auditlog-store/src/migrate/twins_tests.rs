use super::*;
use crate::{CLUSTER_MIGRATIONS, MIGRATIONS, stored_columns};

const DATABASE: &str = "db";
const CLUSTER: &str = "c";

fn single_target() -> SchemaTarget {
    SchemaTarget {
        database: DATABASE.into(),
        table: "t".into(),
        retention_days: None,
        cluster: None,
    }
}

fn cluster_target() -> SchemaTarget {
    SchemaTarget {
        cluster: Some(CLUSTER.into()),
        ..single_target()
    }
}

/// Everything wrong with `cluster` as the twin of `single`, both taken whole.
fn problems(single: &[Migration], cluster: &[Migration]) -> Vec<String> {
    let single = Schema::of(&single_target(), single);
    let cluster = Schema::of(&cluster_target(), cluster);
    let (as_single, mut problems) = as_single_server(&cluster, DATABASE, CLUSTER);
    problems.extend(differences(&single, &as_single));
    problems
}

/// `migrations` with `from` replaced by `to` in migration `version`, which must contain it.
fn edited(migrations: &[Migration], version: u32, from: &str, to: &str) -> Vec<Migration> {
    migrations
        .iter()
        .map(|migration| {
            if migration.version != version {
                return *migration;
            }
            assert!(migration.sql.contains(from), "{from} in {}", migration.name);
            Migration {
                sql: Box::leak(migration.sql.replacen(from, to, 1).into_boxed_str()),
                ..*migration
            }
        })
        .collect()
}

#[test]
fn every_cluster_migration_yields_what_its_single_server_twin_does() {
    assert_eq!(MIGRATIONS.len(), CLUSTER_MIGRATIONS.len());
    for applied in 1..=MIGRATIONS.len() {
        let problems = problems(&MIGRATIONS[..applied], &CLUSTER_MIGRATIONS[..applied]);
        assert!(
            problems.is_empty(),
            "after migration {applied}:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_reader_sees_every_column_index_and_view() {
    let schema = Schema::of(&single_target(), MIGRATIONS);
    let base = &schema.tables["t"];
    let columns: Vec<&str> = base.columns.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(columns, stored_columns());
    assert_eq!(
        base.columns[1].1,
        "DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1))"
    );
    assert_eq!(base.columns[22].1, "Int32 DEFAULT -1");
    assert_eq!(base.indexes.len(), 10);
    assert_eq!(
        base.clauses["ORDER BY"],
        "(time, id, source_partition, source_offset)"
    );
    assert_eq!(base.engine, "ReplacingMergeTree");
    assert!(base.settings.contains("ttl_only_drop_parts = 1"));
    assert_eq!(
        schema.tables["ingest_batches"].clauses["TTL"],
        "toDateTime(recorded_at) + INTERVAL 7 DAY"
    );
    assert_eq!(schema.views.len(), 4);
    assert_eq!(schema.materialized_views.len(), 5);
    assert_eq!(
        schema.materialized_views["t_lookup_feed"].target,
        "t_lookup"
    );
    assert_eq!(
        schema.materialized_views["t_hourly_feed"].target,
        "t_hourly"
    );
    assert_eq!(schema.tables.len(), 9);

    let cluster = Schema::of(&cluster_target(), CLUSTER_MIGRATIONS);
    // Each table that holds rows is a shard's table plus a Distributed one.
    assert_eq!(cluster.tables.len(), 18);
    assert_eq!(
        cluster.tables["t"].columns, cluster.tables["t_local"].columns,
        "the Distributed table follows the shards' columns"
    );
}

#[test]
fn a_cluster_column_that_drifts_is_caught() {
    for (version, from, to, object) in [
        // A type.
        (
            2,
            "num_messages UInt32",
            "num_messages UInt64",
            "table ingest_batches",
        ),
        // A codec.
        (
            3,
            "value String CODEC(ZSTD(1))",
            "value String",
            "table t_lookup",
        ),
        // A default.
        (
            5,
            "signature String,\n    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)",
            "signature String,\n    recorded_at DateTime64(3, 'UTC')",
            "table ingest_checkpoints",
        ),
        // The order.
        (
            4,
            "    user_id UUID,\n    ip String,\n    username",
            "    ip String,\n    user_id UUID,\n    username",
            "table failed_requests_hourly_rollup",
        ),
        // An index.
        (1, "TYPE set(64)", "TYPE set(128)", "table t"),
        // A key.
        (
            4,
            "ORDER BY (user_id, ip, organization_id);",
            "ORDER BY (user_id, ip);",
            "table actor_ips_rollup",
        ),
        // A view.
        (
            4,
            "status_code >= 400 AS failed",
            "status_code > 400 AS failed",
            "view events",
        ),
        // A materialized view.
        (
            4,
            "WHERE status_code >= 400",
            "WHERE status_code > 400",
            "materialized view failed_requests_hourly_mv",
        ),
        // What 0006 changes: a state column, a replaced view, a remade materialized view.
        (
            6,
            "event_keys AggregateFunction(uniqExact, DateTime64(6, 'UTC'), UUID)",
            "event_keys AggregateFunction(uniqExact, UUID)",
            "table daily_events_rollup",
        ),
        (
            6,
            "uniqExactMerge(failure_keys) AS failures",
            "uniqExactMerge(failure_keys) AS failure",
            "view failed_requests_hourly",
        ),
        (
            6,
            "uniqExactState(time, id) AS event_keys",
            "uniqExactState(id) AS event_keys",
            "materialized view daily_events_mv",
        ),
    ] {
        let cluster = edited(CLUSTER_MIGRATIONS, version, from, to);
        // Up to the edited migration: a later one may replace what it made (0006 does).
        let applied = version as usize;
        let problems = problems(&MIGRATIONS[..applied], &cluster[..applied]);
        assert!(
            problems.iter().any(|problem| problem.starts_with(object)),
            "{object} after {from:?} -> {to:?}: {problems:#?}"
        );
    }
}

#[test]
fn a_broken_cluster_layout_is_caught() {
    for (version, from, to, wanted) in [
        (
            2,
            "/{database}/ingest_batches_local'",
            "/{database}/ingest_digests_local'",
            "ingest_batches_local is not replicated under its own path",
        ),
        (
            2,
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/ingest_batches_local', '{replica}')",
            "ENGINE = ReplacingMergeTree",
            "ingest_batches_local is not replicated",
        ),
        (
            4,
            "FROM {database}.{table}_local\nGROUP BY day",
            "FROM {database}.{table}\nGROUP BY day",
            "materialized view daily_events_mv reads t,",
        ),
        (
            4,
            "TO {database}.actor_ips_rollup_local AS",
            "TO {database}.actor_ips_rollup AS",
            "materialized view actor_ips_mv writes actor_ips_rollup,",
        ),
        (
            5,
            "ADD COLUMN IF NOT EXISTS source_offset Int64 DEFAULT -1;",
            "ADD COLUMN IF NOT EXISTS source_offset Int32 DEFAULT -1;",
            "Distributed t has columns",
        ),
        (
            5,
            "ENGINE = Distributed({cluster}, {database}, ingest_digests_local, cityHash64(topic, partition))",
            "ENGINE = Distributed({cluster}, {database}, ingest_batches_local, cityHash64(topic, partition))",
            "Distributed ingest_digests is not over ingest_digests_local",
        ),
    ] {
        let cluster = edited(CLUSTER_MIGRATIONS, version, from, to);
        // Up to the edited migration: a later one may replace what it made (0006 does).
        let applied = version as usize;
        let problems = problems(&MIGRATIONS[..applied], &cluster[..applied]);
        assert!(
            problems.iter().any(|problem| problem.starts_with(wanted)),
            "{wanted}: {problems:#?}"
        );
    }
}

#[test]
#[should_panic(expected = "a statement without ON CLUSTER c")]
fn a_cluster_statement_without_on_cluster_is_caught() {
    let cluster = edited(
        CLUSTER_MIGRATIONS,
        2,
        "{database}.ingest_batches ON CLUSTER {cluster}",
        "{database}.ingest_batches",
    );
    problems(MIGRATIONS, &cluster);
}
