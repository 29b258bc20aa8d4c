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

use crate::tables::{MIGRATIONS_TABLE, hourly_table, lookup_table};
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
    Migration {
        version: 4,
        name: "0004_analysts.sql",
        sql: include_str!("../../../schemas/clickhouse/0004_analysts.sql"),
    },
    Migration {
        version: 5,
        name: "0005_integrity.sql",
        sql: include_str!("../../../schemas/clickhouse/0005_integrity.sql"),
    },
    Migration {
        version: 6,
        name: "0006_event_keys.sql",
        sql: include_str!("../../../schemas/clickhouse/0006_event_keys.sql"),
    },
    Migration {
        version: 7,
        name: "0007_hourly.sql",
        sql: include_str!("../../../schemas/clickhouse/0007_hourly.sql"),
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
    Migration {
        version: 4,
        name: "cluster/0004_analysts.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0004_analysts.sql"),
    },
    Migration {
        version: 5,
        name: "cluster/0005_integrity.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0005_integrity.sql"),
    },
    Migration {
        version: 6,
        name: "cluster/0006_event_keys.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0006_event_keys.sql"),
    },
    Migration {
        version: 7,
        name: "cluster/0007_hourly.sql",
        sql: include_str!("../../../schemas/clickhouse/cluster/0007_hourly.sql"),
    },
];

/// Migrations whose materialized views are backfilled from the rows already in the table,
/// once, each right after the statement that creates its view (so the statements after it,
/// such as 0006's pointing of a merging view at the new states, find them filled), before
/// the migration is recorded as applied.
///
/// Each `CREATE MATERIALIZED VIEW ... TO target AS select` becomes
/// `INSERT INTO target select`. Only for views whose target tolerates rows counted twice
/// (the lookup's readers deduplicate; the rollups hold idempotent aggregate states such as
/// `uniqExactState(time, id)`, `min`, `max`; the chart's hourly counts of 0007, which their
/// reader checks day by day against the table): a row inserted between the view's creation and
/// the backfill is seen by both, and a backfill interrupted before the record runs again in
/// full on the next `migrate`.
pub const BACKFILLED_VERSIONS: &[u32] = &[3, 4, 6, 7];

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

    /// The backfill of a migration in [`BACKFILLED_VERSIONS`] (empty for any other): one
    /// `INSERT INTO target SELECT ...` per materialized view. On a cluster it reads and
    /// writes the Distributed tables, so one run covers every shard.
    pub fn backfill_statements(&self, migration: &Migration) -> Vec<String> {
        self.statements(migration)
            .iter()
            .filter_map(|statement| self.backfill_of(migration, statement))
            .collect()
    }

    /// The backfill of one statement of `migration`: `Some` for a materialized view of a
    /// migration in [`BACKFILLED_VERSIONS`].
    fn backfill_of(&self, migration: &Migration, statement: &str) -> Option<String> {
        if !BACKFILLED_VERSIONS.contains(&migration.version) {
            return None;
        }
        // `x_local` is a shard's own table; `x` is the Distributed table over it.
        let distributed = |name: &str| match self.cluster {
            Some(_) => name.strip_suffix("_local").unwrap_or(name).to_owned(),
            None => name.to_owned(),
        };
        let shard_table = format!("{}.{}_local", self.database, self.table);
        let all_shards = format!("{}.{}", self.database, self.table);
        let (target, select) = materialized_view_backfill(statement)?;
        let select = match self.cluster {
            Some(_) => select.replace(&shard_table, &all_shards),
            None => select,
        };
        // By name, as the view itself inserts: a target may have columns the view does not
        // fill (0006 adds the new states beside the old ones, then drops those).
        let columns = selected_names(&select)?.join(", ");
        Some(format!(
            "INSERT INTO {}\n({columns})\n{select}",
            distributed(&target)
        ))
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

/// The target and the select of `CREATE MATERIALIZED VIEW name [ON CLUSTER c]\nTO target AS\n
/// select` (the layout of the schema files); `None` for any other statement.
fn materialized_view_backfill(statement: &str) -> Option<(String, String)> {
    let code: String = statement
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let rest = code
        .trim_start()
        .strip_prefix("CREATE MATERIALIZED VIEW ")?;
    let (_, after_to) = rest.split_once("\nTO ")?;
    let (target, select) = after_to.split_once(" AS\n")?;
    Some((target.trim().to_owned(), select.trim().to_owned()))
}

/// The output names of `SELECT\n    item,\n    item AS name,\n ... \nFROM ...` (one item per
/// line, as the schema files write them); `None` for any other shape.
fn selected_names(select: &str) -> Option<Vec<String>> {
    let items = select.strip_prefix("SELECT\n")?.split_once("\nFROM ")?.0;
    items
        .split(",\n")
        .map(|item| {
            let item = item.trim();
            let name = item.rsplit_once(" AS ").map_or(item, |(_, name)| name);
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || character == '_');
            is_name.then(|| name.to_owned())
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
            "CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE}{on_cluster} \
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
            "SELECT version, any(checksum) AS checksum FROM {database}.{MIGRATIONS_TABLE} \
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
            let backfill = target.backfill_of(migration, &statement);
            for statement in std::iter::once(statement).chain(backfill) {
                run(client, &statement).await.map_err(|message| {
                    migration_error(migration.version, migration.name, message)
                })?;
            }
        }
        client
            .query(&format!(
                // VALUES rows are read by the input format, which does not substitute
                // query parameters; a SELECT does.
                "INSERT INTO {database}.{MIGRATIONS_TABLE} (version, name, checksum) \
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
    // The chart's hourly counts follow it too, so that an expired day is not counted.
    for table in [
        target.table.clone(),
        lookup_table(&target.table),
        hourly_table(&target.table),
    ] {
        apply_table_retention(client, target, &table).await?;
    }
    Ok(())
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
pub(crate) mod twins;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_both_schemas_have_the_same() {
        for migrations in [MIGRATIONS, CLUSTER_MIGRATIONS] {
            for (index, migration) in migrations.iter().enumerate() {
                assert_eq!(migration.version as usize, index + 1, "{}", migration.name);
            }
        }
        let versions = |migrations: &[Migration]| -> Vec<u32> {
            migrations
                .iter()
                .map(|migration| migration.version)
                .collect()
        };
        assert_eq!(versions(MIGRATIONS), versions(CLUSTER_MIGRATIONS));
    }

    fn analysts_migration(migrations: &[Migration]) -> Migration {
        *migrations
            .iter()
            .find(|migration| migration.name.ends_with("0004_analysts.sql"))
            .expect("0004 is registered")
    }

    #[test]
    fn each_materialized_view_gets_one_backfill_from_the_base_table() {
        let target = SchemaTarget {
            database: "db1".into(),
            table: "t1".into(),
            retention_days: None,
            cluster: None,
        };
        let backfills = target.backfill_statements(&analysts_migration(MIGRATIONS));
        let targets: Vec<&str> = backfills
            .iter()
            .map(|insert| insert.lines().next().unwrap())
            .collect();
        assert_eq!(
            targets,
            [
                "INSERT INTO db1.daily_events_rollup",
                "INSERT INTO db1.failed_requests_hourly_rollup",
                "INSERT INTO db1.actor_ips_rollup",
            ]
        );
        for insert in &backfills {
            assert!(insert.contains("\nFROM db1.t1\n"), "{insert}");
            // Only idempotent aggregates: a plain count or sum would count a re-run twice.
            assert!(
                !insert.contains("count(") && !insert.contains("sum("),
                "{insert}"
            );
        }
        assert!(target.backfill_statements(&MIGRATIONS[0]).is_empty());
    }

    #[test]
    fn backfills_name_the_columns_the_views_fill() {
        let target = SchemaTarget {
            database: "db1".into(),
            table: "t1".into(),
            retention_days: None,
            cluster: None,
        };
        let keys = MIGRATIONS
            .iter()
            .find(|migration| migration.version == 6)
            .expect("0006 is registered");
        let backfills = target.backfill_statements(keys);
        assert_eq!(backfills.len(), 2, "{backfills:#?}");
        assert!(backfills[0].starts_with(
            "INSERT INTO db1.daily_events_rollup\n(day, organization_id, resource_type, action, \
             status_class, organization_name, event_keys)\nSELECT\n"
        ));
        assert!(backfills[1].contains(
            "(hour, organization_id, user_id, ip, username, failure_keys, \
                                   status_codes)\n"
        ));
        let lookup = target.backfill_statements(&MIGRATIONS[2]);
        assert!(
            lookup[0].contains(
                "\n(key, value, time, id, organization_id, resource_type, action, build_reason)\n"
            ),
            "{lookup:#?}"
        );
    }

    #[test]
    fn a_cluster_backfill_reads_and_writes_the_distributed_tables() {
        let target = SchemaTarget {
            database: "db1".into(),
            table: "t1".into(),
            retention_days: None,
            cluster: Some("c1".into()),
        };
        let backfills = target.backfill_statements(&analysts_migration(CLUSTER_MIGRATIONS));
        assert_eq!(backfills.len(), 3);
        for insert in &backfills {
            assert!(!insert.contains("_local"), "{insert}");
            assert!(insert.contains("\nFROM db1.t1\n"), "{insert}");
        }
        let statements = target.statements(&analysts_migration(CLUSTER_MIGRATIONS));
        let views: Vec<&String> = statements
            .iter()
            .filter(|statement| statement.contains("MATERIALIZED VIEW"))
            .collect();
        assert_eq!(views.len(), 3);
        for view in views {
            // A materialized view fires on inserts into the table it reads: the shard's own.
            assert!(view.contains("\nFROM db1.t1_local\n"), "{view}");
            assert!(view.contains(" ON CLUSTER c1\nTO db1."), "{view}");
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
