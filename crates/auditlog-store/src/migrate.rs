//! Versioned, idempotent schema migrations, embedded from `schemas/clickhouse/`.
//!
//! Each migration is a file of statements with `{database}` and `{table}` placeholders.
//! Applied versions are recorded in `{database}.auditlog_migrations` with a checksum of the
//! file, so an edited, already-applied migration is refused instead of silently diverging.
//! Every statement is `IF NOT EXISTS`-safe, so two ingesters migrating at once is harmless.

use std::collections::BTreeMap;

use clickhouse::Client;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{StoreError, check_identifier};

/// One schema migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Applied in ascending order.
    pub version: u32,
    /// The file name, for messages.
    pub name: &'static str,
    /// The statements, with `{database}`/`{table}` placeholders (and `{cluster}` for the
    /// cluster variant).
    pub sql: &'static str,
}

/// The single-server schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_audit_logs.sql",
        sql: include_str!("../../../schemas/clickhouse/0001_audit_logs.sql"),
    },
    Migration {
        version: 2,
        name: "0002_ingest_batches.sql",
        sql: include_str!("../../../schemas/clickhouse/0002_ingest_batches.sql"),
    },
    Migration {
        version: 3,
        name: "0003_lookup.sql",
        sql: include_str!("../../../schemas/clickhouse/0003_lookup.sql"),
    },
];

/// The replicated (cluster) schema: Replicated engines, a Distributed table, `ON CLUSTER`.
pub const CLUSTER_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "cluster/0001_audit_logs.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0001_audit_logs.sql"),
    },
    Migration {
        version: 2,
        name: "cluster/0002_ingest_batches.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0002_ingest_batches.sql"),
    },
    Migration {
        version: 3,
        name: "cluster/0003_lookup.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0003_lookup.sql"),
    },
];

/// Where and how to apply the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaTarget {
    /// The database (created if missing).
    pub database: String,
    /// The audit log table.
    pub table: String,
    /// Retention in days as a TTL; `None` keeps rows forever (Coder's default).
    pub retention_days: Option<u32>,
    /// Apply the cluster variant `ON CLUSTER` this cluster.
    pub cluster: Option<String>,
}

impl SchemaTarget {
    fn validate(&self) -> Result<(), StoreError> {
        check_identifier("database", &self.database)?;
        check_identifier("table", &self.table)?;
        if let Some(cluster) = &self.cluster {
            check_identifier("cluster", cluster)?;
        }
        Ok(())
    }

    fn migrations(&self) -> &'static [Migration] {
        if self.cluster.is_some() {
            CLUSTER_MIGRATIONS
        } else {
            MIGRATIONS
        }
    }

    /// The statements of a migration with the placeholders filled in.
    pub fn statements(&self, migration: &Migration) -> Vec<String> {
        let filled = migration
            .sql
            .replace("{database}", &self.database)
            .replace("{table}", &self.table)
            .replace("{cluster}", self.cluster.as_deref().unwrap_or_default());
        split_statements(&filled)
    }

    fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map(|cluster| format!(" ON CLUSTER {cluster}"))
            .unwrap_or_default()
    }
}

/// Splits a file into statements at lines that end with `;`, dropping comment-only ones.
fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            statements.push(std::mem::take(&mut current));
        }
    }
    statements.push(current);
    statements
        .into_iter()
        .map(|statement| statement.trim().trim_end_matches(';').trim().to_owned())
        .filter(|statement| {
            statement
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with("--"))
        })
        .collect()
}

fn checksum(migration: &Migration) -> String {
    hex::encode(Sha256::digest(migration.sql.as_bytes()))
}

/// What `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call.
    pub applied: Vec<u32>,
    /// Versions that were already applied.
    pub already_applied: Vec<u32>,
    /// The retention TTL now in force, in days.
    pub retention_days: Option<u32>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct AppliedRow {
    version: u32,
    checksum: String,
}

/// Applies every migration not yet applied, then sets retention. Idempotent.
pub async fn apply(client: &Client, target: &SchemaTarget) -> Result<MigrationReport, StoreError> {
    target.validate()?;
    let database = &target.database;
    let on_cluster = target.on_cluster();
    let bootstrap = [
        format!("CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.auditlog_migrations{on_cluster} \
             (version UInt32, name String, checksum String, \
              applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
             ENGINE = MergeTree ORDER BY version"
        ),
    ];
    for statement in &bootstrap {
        run(client, statement)
            .await
            .map_err(|message| migration_error(0, "bootstrap", message))?;
    }
    let applied: BTreeMap<u32, String> = client
        .query(&format!(
            "SELECT version, any(checksum) AS checksum FROM {database}.auditlog_migrations \
             GROUP BY version"
        ))
        .fetch_all::<AppliedRow>()
        .await
        .map_err(|error| migration_error(0, "bootstrap", error.to_string()))?
        .into_iter()
        .map(|row| (row.version, row.checksum))
        .collect();

    let mut report = MigrationReport::default();
    for migration in target.migrations() {
        let expected = checksum(migration);
        if let Some(found) = applied.get(&migration.version) {
            if *found != expected {
                return Err(migration_error(
                    migration.version,
                    migration.name,
                    format!(
                        "already applied with checksum {found}, but the file now has {expected}; \
                         applied migrations must not be edited, add a new one"
                    ),
                ));
            }
            report.already_applied.push(migration.version);
            continue;
        }
        for statement in target.statements(migration) {
            run(client, &statement)
                .await
                .map_err(|message| migration_error(migration.version, migration.name, message))?;
        }
        client
            .query(&format!(
                // VALUES rows are read by the input format, which does not substitute
                // query parameters; a SELECT does.
                "INSERT INTO {database}.auditlog_migrations (version, name, checksum) \
                 SELECT {{version:UInt32}}, {{name:String}}, {{checksum:String}}"
            ))
            .param("version", migration.version)
            .param("name", migration.name)
            .param("checksum", &expected)
            .execute()
            .await
            .map_err(|error| {
                migration_error(migration.version, migration.name, error.to_string())
            })?;
        report.applied.push(migration.version);
    }

    apply_retention(client, target).await?;
    report.retention_days = target.retention_days;
    Ok(report)
}

async fn apply_retention(client: &Client, target: &SchemaTarget) -> Result<(), StoreError> {
    // The lookup table follows the events' retention exactly: a lookup row that outlived
    // its event would be counted by a point filter's count.
    for table in [target.table.clone(), lookup_table(&target.table)] {
        apply_table_retention(client, target, &table).await?;
    }
    Ok(())
}

/// The lookup table that serves point filters on `table` (migration 0003).
pub fn lookup_table(table: &str) -> String {
    format!("{table}_lookup")
}

async fn apply_table_retention(
    client: &Client,
    target: &SchemaTarget,
    table_name: &str,
) -> Result<(), StoreError> {
    // On a cluster the rows live in `{table}_local`; a Distributed table takes no TTL.
    let table_name = match target.cluster {
        Some(_) => format!("{table_name}_local"),
        None => table_name.to_owned(),
    };
    let table = format!("{}.{}", target.database, table_name);
    let on_cluster = target.on_cluster();
    let statement = match target.retention_days {
        Some(days) => format!(
            "ALTER TABLE {table}{on_cluster} MODIFY TTL toDateTime(time) + INTERVAL {days} DAY"
        ),
        None => {
            let engine_full: String = client
                .query("SELECT engine_full FROM system.tables WHERE database = {database:String} AND name = {table:String}")
                .param("database", &target.database)
                .param("table", &table_name)
                .fetch_one()
                .await
                .map_err(|error| migration_error(0, "retention", error.to_string()))?;
            if !engine_full.contains(" TTL ") {
                return Ok(());
            }
            format!("ALTER TABLE {table}{on_cluster} REMOVE TTL")
        }
    };
    run(client, &statement)
        .await
        .map_err(|message| migration_error(0, "retention", message))
}

async fn run(client: &Client, statement: &str) -> Result<(), String> {
    client
        .query(statement)
        .execute()
        .await
        .map_err(|error| error.to_string())
}

fn migration_error(version: u32, name: &str, message: String) -> StoreError {
    StoreError::Migration {
        version,
        name: name.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_ascending() {
        for migrations in [MIGRATIONS, CLUSTER_MIGRATIONS] {
            for (index, migration) in migrations.iter().enumerate() {
                assert_eq!(migration.version as usize, index + 1, "{}", migration.name);
            }
        }
    }

    #[test]
    fn statements_are_split_and_filled() {
        let target = SchemaTarget {
            database: "db1".into(),
            table: "t1".into(),
            retention_days: None,
            cluster: None,
        };
        let statements = target.statements(&MIGRATIONS[0]);
        assert_eq!(statements.len(), 2, "{statements:#?}");
        assert!(statements[0].contains("CREATE DATABASE IF NOT EXISTS db1"));
        assert!(statements[1].contains("CREATE TABLE IF NOT EXISTS db1.t1"));
        assert!(
            statements.iter().all(
                |statement| !statement.contains("{database}") && !statement.contains("{table}")
            )
        );
    }

    #[test]
    fn every_placeholder_is_known() {
        for migration in MIGRATIONS.iter().chain(CLUSTER_MIGRATIONS) {
            let stripped = migration
                .sql
                .replace("{database}", "")
                .replace("{table}", "")
                .replace("{cluster}", "")
                .replace("{shard}", "")
                .replace("{replica}", "");
            assert!(
                !stripped.contains('{'),
                "unknown placeholder in {}",
                migration.name
            );
        }
    }
}
