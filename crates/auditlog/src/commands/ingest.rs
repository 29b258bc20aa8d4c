//! `auditlog ingest`: the consumer group member, with its operational endpoints.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use auditlog_api::http;

use crate::cli::IngestArgs;
use crate::config::{FileConfig, IngestSettings, Settings};
use crate::telemetry;

/// The exit code of a stop whose shutdown timeout passed with batches unwritten: nothing is
/// lost (their offsets are not committed), but a restart has work to redo.
pub const EXIT_UNWRITTEN: u8 = 75;

pub async fn run(settings: &Settings, args: &IngestArgs, file: &FileConfig) -> Result<ExitCode> {
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
    // The endpoints answer until the ingester has stopped, not merely been asked to: a
    // shutdown that waits on an outage is exactly when an operator looks at them.
    let (ops_stop_tx, ops_stop) = tokio::sync::watch::channel(false);
    let ops = tokio::spawn(http::serve(
        ingest.metrics_listen,
        http::ops_router(metrics, readiness),
        ops_stop,
    ));
    tracing::info!(
        topic = %ingest.config.topic,
        group = %ingest.config.group,
        table = %format!("{}.{}", ingest.config.clickhouse.database, ingest.config.clickhouse.table),
        "ingester starting"
    );
    let outcome = auditlog_ingester::run(ingest.config, health, shutdown).await;
    let _ = ops_stop_tx.send(true);
    ops.abort();
    let report = outcome?;
    if report.unwritten_batches > 0 {
        tracing::warn!(
            rows = report.rows_inserted,
            unwritten_batches = report.unwritten_batches,
            exit_code = EXIT_UNWRITTEN,
            "ingester stopped with batches unwritten; their offsets are not committed"
        );
        return Ok(ExitCode::from(EXIT_UNWRITTEN));
    }
    tracing::info!(
        rows = report.rows_inserted,
        dead_lettered = report.dead_lettered,
        batches = report.batches,
        "ingester stopped cleanly"
    );
    Ok(ExitCode::SUCCESS)
}
