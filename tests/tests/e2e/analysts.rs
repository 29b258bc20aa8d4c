//! The analysts' schema (migration 0004, docs/analysts.md) against the real engine:
//! - every rollup, fed by its materialized view while events and duplicate copies are
//!   inserted, then rebuilt by `migrate`'s backfill, then backfilled a second time on top,
//!   agrees with the base table with one row per (time, id);
//! - the view yields each event once;
//! - `auditlog migrate` on a fresh database creates the view and the rollups;
//! - the cluster variant and the DDL of `auditlog access-ddl` parse in ClickHouse's own
//!   parser (the local engine has neither a cluster nor access control to run them on).

use auditlog_e2e::clickhouse_execute;
use auditlog_store::{CLUSTER_MIGRATIONS, SchemaTarget};

use crate::dataset::dataset;
use crate::query_support::{auditlog_cli_ok, load_events, migrated_database};

const NUM_GENERATED_EVENTS: u64 = 20_000;
const ANALYSTS_VERSION: u32 = 4;
/// Migration 0006 makes the rollups count (time, id) pairs: re-applying 0004 re-applies it.
const EVENT_KEYS_VERSION: u32 = 6;

/// Each rollup's merging view, and the same numbers computed from the base table with one
/// row per event (`LIMIT 1 BY time, id`, independent of FINAL and of merges), both ordered alike.
const ROLLUP_CHECKS: &[(&str, &str, &str)] = &[
    (
        "daily_events",
        "SELECT day, organization_id, resource_type, action, status_class, events \
         FROM daily_events ORDER BY ALL",
        "SELECT toDate(time) AS day, organization_id, resource_type, action, \
                concat(toString(intDiv(status_code, 100)), 'xx') AS status_class, \
                count() AS events \
         FROM (SELECT * FROM audit_logs LIMIT 1 BY time, id) \
         GROUP BY ALL ORDER BY ALL",
    ),
    (
        "failed_requests_hourly",
        "SELECT hour, organization_id, user_id, username, ip, failures, status_codes \
         FROM failed_requests_hourly ORDER BY ALL",
        "SELECT toStartOfHour(time) AS hour, organization_id, user_id, any(user_username) AS username, \
                ip, count() AS failures, arraySort(groupUniqArray(status_code)) AS status_codes \
         FROM (SELECT * FROM audit_logs LIMIT 1 BY time, id) WHERE status_code >= 400 \
         GROUP BY hour, organization_id, user_id, ip ORDER BY ALL",
    ),
    (
        "actor_ips",
        "SELECT user_id, username, ip, organization_id, first_seen, last_seen \
         FROM actor_ips ORDER BY ALL",
        "SELECT user_id, any(user_username) AS username, ip, organization_id, \
                min(time) AS first_seen, max(time) AS last_seen \
         FROM (SELECT * FROM audit_logs LIMIT 1 BY time, id) \
         GROUP BY user_id, ip, organization_id ORDER BY ALL",
    ),
];

/// What migration 0004 creates, in an order that drops dependants first.
const ANALYSTS_OBJECTS: &[&str] = &[
    "events",
    "daily_events",
    "daily_events_mv",
    "daily_events_rollup",
    "failed_requests_hourly",
    "failed_requests_hourly_mv",
    "failed_requests_hourly_rollup",
    "actor_ips",
    "actor_ips_mv",
    "actor_ips_rollup",
];

async fn text(client: &clickhouse::Client, sql: &str) -> String {
    let bytes = client
        .query(sql)
        .fetch_bytes("TabSeparated")
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .collect()
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

async fn assert_rollups_agree(client: &clickhouse::Client, stage: &str) {
    for (name, rollup, reference) in ROLLUP_CHECKS {
        let from_rollup = text(client, rollup).await;
        let from_events = text(client, reference).await;
        assert!(
            from_rollup.lines().count() > 10,
            "{stage}: {name} has rows to compare"
        );
        assert!(
            from_rollup == from_events,
            "{stage}: {name} differs from the deduplicated base table ({} rows against {})",
            from_rollup.lines().count(),
            from_events.lines().count()
        );
    }
}

/// Applies the schema, where exactly `missing` were not yet applied.
async fn migrate(database: &str, missing: &[u32]) {
    let target = SchemaTarget {
        database: database.to_owned(),
        table: "audit_logs".to_owned(),
        retention_days: None,
        cluster: None,
    };
    let report = auditlog_store::migrate(&auditlog_e2e::clickhouse_client(), &target)
        .await
        .unwrap_or_else(|error| panic!("migrate {database}: {error}"));
    assert_eq!(report.applied, missing);
}

/// Makes `migrate` treat `versions` as new again.
async fn forget_migrations(client: &clickhouse::Client, versions: &[u32]) {
    let versions: Vec<String> = versions.iter().map(u32::to_string).collect();
    clickhouse_execute(
        client,
        &format!(
            "DELETE FROM auditlog_migrations WHERE version IN ({})",
            versions.join(", ")
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollups_agree_with_the_base_table_deduplicated_by_id() {
    let dataset = dataset(15, NUM_GENERATED_EVENTS);
    let (client, database) = migrated_database("analysts_rollups").await;
    load_events(&client, &dataset.events).await;
    load_events(&client, &dataset.duplicates).await;

    let physical = text(&client, "SELECT count() FROM audit_logs").await;
    let expected_physical = dataset.events.len() + dataset.duplicates.len();
    assert_eq!(physical.trim(), expected_physical.to_string());
    let seen = text(&client, "SELECT count(), uniqExact(id) FROM events").await;
    let num_events = dataset.events.len();
    assert_eq!(seen.trim(), format!("{num_events}\t{num_events}"));
    let daily_total = text(&client, "SELECT sum(events) FROM daily_events").await;
    assert_eq!(daily_total.trim(), num_events.to_string());
    let failed = dataset
        .events
        .iter()
        .filter(|event| event.status_code >= 400)
        .count();
    let failed_total = text(&client, "SELECT sum(failures) FROM failed_requests_hourly").await;
    assert_eq!(failed_total.trim(), failed.to_string());
    assert_rollups_agree(&client, "fed by the materialized views").await;

    // The backfill path: the rollups rebuilt from rows already in the table.
    for object in ANALYSTS_OBJECTS {
        clickhouse_execute(&client, &format!("DROP TABLE IF EXISTS {object}")).await;
    }
    let analysts = [ANALYSTS_VERSION, EVENT_KEYS_VERSION];
    forget_migrations(&client, &analysts).await;
    migrate(&database, &analysts).await;
    assert_rollups_agree(&client, "backfilled").await;

    // A second backfill over full rollups, and more duplicate inserts: nothing counts twice.
    // (0006's backfill: 0004's own would write the id states 0006 dropped.)
    forget_migrations(&client, &[EVENT_KEYS_VERSION]).await;
    migrate(&database, &[EVENT_KEYS_VERSION]).await;
    load_events(&client, &dataset.duplicates).await;
    assert_rollups_agree(&client, "backfilled twice, duplicates inserted again").await;
}

/// The local engine has no cluster, so the cluster variant is checked by ClickHouse's parser.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_variant_parses() {
    let client = auditlog_e2e::clickhouse_client();
    let target = SchemaTarget {
        database: "audit".to_owned(),
        table: "audit_logs".to_owned(),
        retention_days: None,
        cluster: Some("analysts".to_owned()),
    };
    for (version, views) in [(ANALYSTS_VERSION, 3), (EVENT_KEYS_VERSION, 2)] {
        let migration = CLUSTER_MIGRATIONS
            .iter()
            .find(|migration| migration.version == version)
            .expect("a cluster twin");
        let statements = target.statements(migration);
        let backfills = target.backfill_statements(migration);
        assert_eq!(backfills.len(), views, "{}", migration.name);
        for statement in statements.iter().chain(&backfills) {
            assert_parses(&client, statement).await;
        }
    }
}

/// Fails unless ClickHouse's own parser accepts `statement`.
pub async fn assert_parses(client: &clickhouse::Client, statement: &str) {
    client
        .query("SELECT formatQuery({statement:String})")
        .param("statement", statement)
        .fetch_one::<String>()
        .await
        .unwrap_or_else(|error| panic!("does not parse: {error}\n{statement}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn auditlog_migrate_creates_the_view_and_the_rollups() {
    let database = auditlog_e2e::unique_name("analysts_migrate");
    let versions: Vec<u32> = auditlog_store::MIGRATIONS
        .iter()
        .map(|migration| migration.version)
        .collect();
    assert!(versions.contains(&ANALYSTS_VERSION));
    let printed = auditlog_cli_ok(&["migrate", "--skip-topics"], &database);
    assert!(
        printed.contains(&format!("applied {versions:?}")),
        "{printed}"
    );
    let client = auditlog_e2e::clickhouse_client();
    let tables = client
        .query("SELECT name, engine FROM system.tables WHERE database = {database:String} ORDER BY name")
        .param("database", &database)
        .fetch_all::<(String, String)>()
        .await
        .expect("tables");
    for object in ANALYSTS_OBJECTS {
        let engine = tables
            .iter()
            .find(|(name, _)| name == object)
            .map(|(_, engine)| engine.as_str());
        let wanted = if object.ends_with("_rollup") {
            "AggregatingMergeTree"
        } else if object.ends_with("_mv") {
            "MaterializedView"
        } else {
            "View"
        };
        assert_eq!(engine, Some(wanted), "{object} in {tables:?}");
    }
    let again = auditlog_cli_ok(&["migrate", "--skip-topics"], &database);
    assert!(
        again.contains(&format!("applied [], already applied {versions:?}")),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_ddl_parses() {
    let client = auditlog_e2e::clickhouse_client();
    let hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    let runs: [&[&str]; 2] = [
        &["access-ddl"],
        &[
            "access-ddl",
            "--role",
            "acme_auditor",
            "--organization",
            "0195a000-0000-7000-8000-000000000001",
            "--organization",
            "0195a000-0000-7000-8000-000000000002",
            "--user",
            "acme_analyst",
            "--password-sha256",
            hash,
            "--service-user",
            "api",
            "--service-user",
            "ingester",
        ],
    ];
    for args in runs {
        let printed = auditlog_cli_ok(args, "audit");
        let statements: Vec<&str> = printed
            .lines()
            .map(|line| line.strip_suffix(';').expect("one statement per line"))
            .collect();
        assert!(statements.len() >= 12, "{printed}");
        for statement in &statements {
            assert_parses(&client, statement).await;
        }
    }
}
