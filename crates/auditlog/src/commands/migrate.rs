//! `auditlog migrate`: apply the schema and the retention TTL.

use anyhow::Result;

use crate::cli::MigrateArgs;
use crate::config::{FileConfig, Settings};

pub async fn run(settings: &Settings, args: &MigrateArgs, file: &FileConfig) -> Result<()> {
    let target = settings.schema_target(args, file);
    let client = settings
        .clickhouse()
        .client()
        // Migrations create the database, so they must not select it first.
        .with_database("default");
    let report = auditlog_ingester::migrate(&client, &target).await?;
    println!(
        "schema of {}.{} is current: applied {:?}, already applied {:?}, retention {}",
        target.database,
        target.table,
        report.applied,
        report.already_applied,
        report.retention_days.map_or_else(
            || "off (keep forever)".to_owned(),
            |days| format!("{days} days")
        ),
    );
    Ok(())
}
