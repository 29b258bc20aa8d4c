//! `auditlog serve`: the Coder-compatible audit API plus `/healthz`, `/readyz`, `/metrics`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use auditlog_query::QueryRunner;

use crate::api::{self, ApiState, Authenticator};
use crate::cli::ServeArgs;
use crate::config::{FileConfig, ServeSettings, Settings};
use crate::http::{self, Readiness};
use crate::telemetry;

/// How often `/readyz`'s view of ClickHouse is refreshed.
const READINESS_PROBE_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(settings: &Settings, args: &ServeArgs, file: &FileConfig) -> Result<()> {
    let serve = ServeSettings::resolve(settings, args, file);
    let auth = Authenticator::try_new(&serve.tokens)?;
    if auth.is_open() {
        if !serve.listen.ip().is_loopback() {
            bail!(
                "refusing to serve the audit api on {} without tokens: configure [[api.tokens]] or listen on a loopback address",
                serve.listen
            );
        }
        tracing::warn!(
            listen = %serve.listen,
            "NO API TOKENS CONFIGURED: the audit api is OPEN to every local process, which reads every audit log as an auditor; configure [[api.tokens]] before exposing it"
        );
    }
    let metrics = telemetry::init_metrics()?;
    let runner = Arc::new(
        QueryRunner::try_new(
            settings.clickhouse().client(),
            &settings.clickhouse_database,
            &settings.clickhouse_table,
        )?
        .with_query_timeout(serve.query_timeout),
    );
    let readiness = spawn_readiness_probe(Arc::clone(&runner));
    let state = ApiState {
        runner,
        auth: Arc::new(auth),
    };
    let router = api::router(state).merge(http::ops_router(metrics, readiness));
    tracing::info!(
        listen = %serve.listen,
        tokens = serve.tokens.len(),
        query_timeout = ?serve.query_timeout,
        database = %settings.clickhouse_database,
        table = %settings.clickhouse_table,
        "audit api starting"
    );
    http::serve(serve.listen, router, telemetry::shutdown_signal()).await
}

/// Pings ClickHouse in the background; `/readyz` reports the last answer.
fn spawn_readiness_probe(runner: Arc<QueryRunner>) -> Readiness {
    let status: Arc<Mutex<Result<(), String>>> =
        Arc::new(Mutex::new(Err("clickhouse not probed yet".to_owned())));
    let probe_status = Arc::clone(&status);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(READINESS_PROBE_INTERVAL);
        loop {
            interval.tick().await;
            let result = runner
                .ping()
                .await
                .map_err(|error| format!("clickhouse unreachable: {error}"));
            if let Err(reason) = &result {
                tracing::warn!(%reason, "readiness probe failed");
            }
            *probe_status
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = result;
        }
    });
    Arc::new(move || {
        status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    })
}
