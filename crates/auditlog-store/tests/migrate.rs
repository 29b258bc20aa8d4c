//! The migrations against the real engine: a fresh database gets every table, view and
//! lookup; existing rows are backfilled into the lookup; a second run changes nothing; the
//! retention TTL covers the table and its lookup; the cluster DDL parses.

use auditlog_store::{
    CLUSTER_MIGRATIONS, COLUMNS, MIGRATIONS, RowEncoder, SchemaTarget, lookup_table, migrate,
};
use auditlog_testkit::{clickhouse_client, clickhouse_scalar, fresh_database};
use bytes::Bytes;

async fn engine_full(client: &clickhouse::Client, database: &str, table: &str) -> String {
    client
        .query("SELECT engine_full FROM system.tables WHERE database = ? AND name = ?")
        .bind(database)
        .bind(table)
        .fetch_one::<String>()
        .await
        .unwrap_or_else(|error| panic!("{database}.{table}: {error}"))
}

fn target(database: &str, retention_days: Option<u32>) -> SchemaTarget {
    SchemaTarget {
        database: database.to_owned(),
        table: "audit_logs".to_owned(),
        retention_days,
        cluster: None,
    }
}

async fn insert_sample_events(client: &clickhouse::Client, count: u128) {
    let mut rows = Vec::new();
    let mut encoder = RowEncoder::default();
    let sample = auditlog_event::testing::sample_event();
    for number in 0..count {
        let event = auditlog_event::AuditEvent {
            id: uuid::Uuid::from_u128(number + 1),
            ..sample.clone()
        };
        encoder.encode(&event, &mut rows);
    }
    let mut insert = client.insert_formatted_with(format!(
        "INSERT INTO audit_logs ({}) FORMAT RowBinary",
        COLUMNS.join(", ")
    ));
    insert.send(Bytes::from(rows)).await.expect("send rows");
    insert.end().await.expect("insert rows");
}

#[tokio::test]
async fn migrations_create_backfill_and_stay_idempotent() {
    let (client, database) = fresh_database("store_migrate").await;
    let root = clickhouse_client();

    let first = migrate(&root, &target(&database, None)).await.unwrap();
    let every_version: Vec<u32> = MIGRATIONS
        .iter()
        .map(|migration| migration.version)
        .collect();
    assert_eq!(first.applied, every_version);
    for table in [
        "audit_logs",
        "ingest_batches",
        "audit_logs_lookup",
        "audit_logs_lookup_feed",
    ] {
        let sql = format!(
            "SELECT count() FROM system.tables WHERE database = '{database}' AND name = '{table}'"
        );
        assert_eq!(clickhouse_scalar(&root, &sql).await, 1, "{table} exists");
    }

    // The view feeds the lookup: seven keys per stored row.
    insert_sample_events(&client, 10).await;
    assert_eq!(
        clickhouse_scalar(&client, "SELECT count() FROM audit_logs_lookup").await,
        70
    );

    // Rows stored before migration 0003: forget it and its rows, and apply again.
    for statement in [
        "DROP TABLE audit_logs_lookup_feed",
        "TRUNCATE TABLE audit_logs_lookup",
        "DELETE FROM auditlog_migrations WHERE version = 3",
    ] {
        client.query(statement).execute().await.unwrap();
    }
    let again = migrate(&root, &target(&database, None)).await.unwrap();
    assert_eq!(again.applied, [3]);
    let others: Vec<u32> = every_version.into_iter().filter(|&v| v != 3).collect();
    assert_eq!(again.already_applied, others);
    assert_eq!(
        clickhouse_scalar(&client, "SELECT count() FROM audit_logs_lookup").await,
        70,
        "the backfill wrote the stored rows' keys"
    );
    let sql = "SELECT count() FROM audit_logs_lookup WHERE key = 'username' \
               AND value = (SELECT lower(any(user_username)) FROM audit_logs)";
    assert_eq!(clickhouse_scalar(&client, sql).await, 10);

    // Nothing left to do: nothing is applied, nothing is written twice.
    let idle = migrate(&root, &target(&database, None)).await.unwrap();
    assert!(idle.applied.is_empty());
    assert_eq!(
        clickhouse_scalar(&client, "SELECT count() FROM audit_logs_lookup").await,
        70
    );

    // Retention covers the events and their lookup rows alike, and comes off again.
    migrate(&root, &target(&database, Some(30))).await.unwrap();
    for table in ["audit_logs".to_owned(), lookup_table("audit_logs")] {
        let engine = engine_full(&root, &database, &table).await;
        assert!(
            engine.contains("TTL toDateTime(time) + toIntervalDay(30)"),
            "{table}: {engine}"
        );
    }
    migrate(&root, &target(&database, None)).await.unwrap();
    for table in ["audit_logs".to_owned(), lookup_table("audit_logs")] {
        let engine = engine_full(&root, &database, &table).await;
        assert!(!engine.contains(" TTL "), "{table}: {engine}");
    }
}

#[tokio::test]
async fn the_cluster_ddl_parses() {
    // No cluster here; the engine's own parser still checks every statement.
    let root = clickhouse_client();
    let cluster = SchemaTarget {
        database: "audit".to_owned(),
        table: "audit_logs".to_owned(),
        retention_days: None,
        cluster: Some("audit_cluster".to_owned()),
    };
    assert_eq!(CLUSTER_MIGRATIONS.len(), MIGRATIONS.len());
    for migration in CLUSTER_MIGRATIONS {
        for statement in cluster.statements(migration) {
            let formatted: String = root
                .query("SELECT formatQuery(?)")
                .bind(&statement)
                .fetch_one()
                .await
                .unwrap_or_else(|error| panic!("{}: {error}\n{statement}", migration.name));
            if statement.starts_with("CREATE") {
                assert!(
                    formatted.contains("ON CLUSTER audit_cluster"),
                    "{}: {formatted}",
                    migration.name
                );
            }
        }
    }
}
