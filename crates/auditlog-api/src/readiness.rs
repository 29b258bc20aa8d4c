//! `/readyz` for the API: whether ClickHouse answers, asked in the background so a probe
//! never waits on a query.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlog_query::QueryRunner;
use auditlog_store::ServerFailure;

use crate::http::Readiness;

/// How often `/readyz`'s view of ClickHouse is refreshed.
const READINESS_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Pings ClickHouse in the background; `/readyz` reports the last answer.
///
/// `/readyz` needs no token, so it says what is wrong in words and never passes on
/// ClickHouse's exception (names, versions); the exception goes to the log.
pub fn spawn_clickhouse_probe(runner: Arc<QueryRunner>) -> Readiness {
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
