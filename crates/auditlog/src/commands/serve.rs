//! `auditlog serve`: the audit page at `/`, the Coder-compatible audit API, and `/healthz`,
//! `/readyz`, `/metrics`. The HTTP face is `auditlog_api`'s; this only wires the resolved
//! settings into it.

use std::sync::Arc;

use anyhow::Result;
use auditlog_api::{ApiServer, ApiState, Authenticator, ServeOptions, refuse_open_exposure};
use auditlog_query::QueryRunner;

use crate::cli::ServeArgs;
use crate::config::{FileConfig, ServeSettings, Settings};
use crate::telemetry;

pub async fn run(settings: &Settings, args: &ServeArgs, file: &FileConfig) -> Result<()> {
    let serve = ServeSettings::resolve(settings, args, file)?;
    let auth = Authenticator::try_new(&serve.tokens)?;
    refuse_open_exposure(&auth, serve.listen)?;
    let metrics = telemetry::init_metrics()?;
    let runner = Arc::new(
        QueryRunner::for_config(&settings.clickhouse())?.with_query_timeout(serve.query_timeout),
    );
    // The chart's census of every stored day, taken once in the background, so the first
    // chart drawn is not the one that pays for it.
    let warming = Arc::clone(&runner);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match warming.warm_chart().await {
            Ok(()) => tracing::info!(elapsed = ?started.elapsed(), "chart census taken"),
            Err(error) => {
                tracing::warn!(%error, "chart census not taken; the first chart will take it")
            }
        }
    });
    let state = ApiState {
        runner,
        auth: Arc::new(auth),
        evidence: Arc::new(auditlog_verify::Evidence::new(
            &settings.clickhouse(),
            &settings.kafka_topic,
        )),
    };
    let options = ServeOptions {
        listen: serve.listen,
        ops_listen: serve.ops_listen,
        limits: serve.limits,
    };
    let server = ApiServer::bind(options, state, metrics).await?;
    tracing::info!(
        listen = %serve.listen,
        ops_listen = ?serve.ops_listen,
        tokens = serve.tokens.len(),
        query_timeout = ?serve.query_timeout,
        limits = ?server.limits(),
        database = %settings.clickhouse_database,
        table = %settings.clickhouse_table,
        "audit api starting"
    );
    server.run(telemetry::shutdown_signal()).await?;
    Ok(())
}
