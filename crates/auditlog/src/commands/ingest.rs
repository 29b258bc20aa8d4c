//! `auditlog ingest`: the consumer group member, with its operational endpoints.

use std::sync::Arc;

use anyhow::Result;

use crate::cli::IngestArgs;
use crate::config::{FileConfig, IngestSettings, Settings};
use crate::{http, telemetry};

pub async fn run(settings: &Settings, args: &IngestArgs, file: &FileConfig) -> Result<()> {
    let ingest = IngestSettings::resolve(settings, args, file)?;
    if ingest.migrate {
        // The schema only: topics are sized for the cluster by `auditlog migrate`, once.
        let schema_only = crate::cli::MigrateCommandArgs {
            schema: args.schema.clone(),
            skip_topics: true,
            ..Default::default()
        };
        super::migrate::run(settings, &schema_only, file).await?;
    }
    let metrics = telemetry::init_metrics()?;
    let shutdown = telemetry::shutdown_signal();
    let health = auditlog_ingester::Health::default();
    let readiness: http::Readiness = {
        let health = health.clone();
        Arc::new(move || health.readiness())
    };
    let ops = tokio::spawn(http::serve(
        ingest.metrics_listen,
        http::ops_router(metrics, readiness),
        shutdown.clone(),
    ));
    tracing::info!(
        topic = %ingest.config.topic,
        group = %ingest.config.group,
        table = %format!("{}.{}", ingest.config.clickhouse.database, ingest.config.clickhouse.table),
        "ingester starting"
    );
    let outcome = auditlog_ingester::run(ingest.config, health, shutdown).await;
    ops.abort();
    let report = outcome?;
    tracing::info!(
        rows = report.rows_inserted,
        dead_lettered = report.dead_lettered,
        batches = report.batches,
        "ingester stopped cleanly"
    );
    Ok(())
}
