//! `auditlog serve`: the audit page at `/`, the Coder-compatible audit API, and `/healthz`,
//! `/readyz`, `/metrics`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use auditlog_query::QueryRunner;
use auditlog_store::ServerFailure;

use crate::api::{self, ApiState, Authenticator};
use crate::cli::ServeArgs;
use crate::config::{FileConfig, ServeSettings, Settings};
use crate::http::{self, Readiness};
use crate::telemetry;

/// How often `/readyz`'s view of ClickHouse is refreshed.
const READINESS_PROBE_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(settings: &Settings, args: &ServeArgs, file: &FileConfig) -> Result<()> {
    let mut serve = ServeSettings::resolve(settings, args, file)?;
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
        QueryRunner::for_config(&settings.clickhouse())?.with_query_timeout(serve.query_timeout),
    );
    let readiness = spawn_readiness_probe(Arc::clone(&runner));
    let state = ApiState {
        runner,
        auth: Arc::new(auth),
        evidence: Arc::new(crate::evidence::Evidence::new(
            &settings.clickhouse(),
            &settings.kafka_topic,
        )),
    };
    let ops = http::ops_router(metrics, readiness);
    // The ops listener's connections, and those it sheds, take descriptors too.
    let ops_connections = serve
        .ops_listen
        .map_or(0, |_| http::OPS_MAX_CONNECTIONS + http::MAX_SHEDDING);
    serve.limits.max_connections = http::fit_connections_to_file_limit(
        serve.limits.max_connections,
        http::RESERVED_CONNECTIONS + ops_connections,
    );
    let api_server = http::Server::bind(
        "api",
        serve.listen,
        api::router(state)
            .merge(crate::ui::router())
            .merge(ops.clone()),
        serve.limits.max_connections,
        serve.limits,
    )
    .await?
    .with_reserve(
        http::reserve_router(ops.clone()),
        http::RESERVED_CONNECTIONS,
    );
    let ops_server = match serve.ops_listen {
        Some(address) => Some(
            http::Server::bind("ops", address, ops, http::OPS_MAX_CONNECTIONS, serve.limits)
                .await?,
        ),
        None => None,
    };
    tracing::info!(
        listen = %serve.listen,
        ops_listen = ?serve.ops_listen,
        tokens = serve.tokens.len(),
        query_timeout = ?serve.query_timeout,
        limits = ?serve.limits,
        database = %settings.clickhouse_database,
        table = %settings.clickhouse_table,
        "audit api starting"
    );
    let shutdown = telemetry::shutdown_signal();
    match ops_server {
        Some(ops_server) => {
            tokio::try_join!(api_server.run(shutdown.clone()), ops_server.run(shutdown))?;
            Ok(())
        }
        None => api_server.run(shutdown).await,
    }
}

/// Pings ClickHouse in the background; `/readyz` reports the last answer.
///
/// `/readyz` needs no token, so it says what is wrong in words and never passes on
/// ClickHouse's exception (names, versions); the exception goes to the log.
fn spawn_readiness_probe(runner: Arc<QueryRunner>) -> Readiness {
    let status: Arc<Mutex<Result<(), String>>> =
        Arc::new(Mutex::new(Err("ClickHouse not checked yet".to_owned())));
    let probe_status = Arc::clone(&status);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(READINESS_PROBE_INTERVAL);
        loop {
            interval.tick().await;
            let result = runner.ping().await.map_err(|error| {
                let reason = readiness_reason(&error);
                tracing::warn!(%reason, %error, "readiness probe failed");
                reason.to_owned()
            });
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

/// What `/readyz` says about a failed ping: words an unauthenticated caller may see.
fn readiness_reason(error: &auditlog_query::Error) -> &'static str {
    let message = match error {
        auditlog_query::Error::Timeout { .. } => return "ClickHouse did not answer in time",
        auditlog_query::Error::ClickHouse { message } => message,
        _ => return "ClickHouse query failed",
    };
    match ServerFailure::from_message(message) {
        ServerFailure::Unreachable => "ClickHouse unreachable",
        ServerFailure::UnknownDatabase => "database missing",
        ServerFailure::UnknownTable => "table missing",
        ServerFailure::Credentials => "ClickHouse rejected the credentials",
        ServerFailure::AccessDenied => "ClickHouse denied access",
        ServerFailure::Timeout => "ClickHouse did not answer in time",
        ServerFailure::UnknownSetting
        | ServerFailure::Transient(_)
        | ServerFailure::Permanent(_) => "ClickHouse answered with an error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clickhouse(message: &str) -> auditlog_query::Error {
        auditlog_query::Error::ClickHouse {
            message: message.to_owned(),
        }
    }

    #[test]
    fn readiness_names_the_problem_without_the_exception() {
        let cases = [
            (
                "bad response: Code: 81. DB::Exception: Database x_nonexistent does not exist. (UNKNOWN_DATABASE) (version 26.9.2.1)",
                "database missing",
            ),
            (
                "bad response: Code: 60. DB::Exception: Table audit.nope does not exist. (UNKNOWN_TABLE)",
                "table missing",
            ),
            (
                "bad response: Code: 516. DB::Exception: default: Authentication failed: password is incorrect. (AUTHENTICATION_FAILED)",
                "ClickHouse rejected the credentials",
            ),
            (
                "bad response: Code: 497. DB::Exception: ann: Not enough privileges. (ACCESS_DENIED)",
                "ClickHouse denied access",
            ),
            (
                "bad response: Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)",
                "ClickHouse answered with an error",
            ),
            (
                "network error: client error (Connect): tcp connect error: Connection refused (os error 111)",
                "ClickHouse unreachable",
            ),
        ];
        for (message, reason) in cases {
            assert_eq!(readiness_reason(&clickhouse(message)), reason, "{message}");
        }
        assert_eq!(
            readiness_reason(&auditlog_query::Error::Timeout {
                limit: Duration::from_secs(1)
            }),
            "ClickHouse did not answer in time"
        );
    }
}
