//! Writes sealed batches into ClickHouse, retrying transient failures with the same bytes.
//!
//! A batch is sent as pre-encoded RowBinary, LZ4-framed by the client, with
//! `insert_deduplication_token` derived from its offset range and `async_insert=0`: the
//! acknowledgement means the rows are in a part on disk, and a re-send of the same range
//! (a retry, or a replay after a crash) is dropped by ClickHouse's insert deduplication.

use std::time::Duration;

use bytes::Bytes;
use clickhouse::Client;
use rand::Rng;

use crate::IngestError;

/// Chunks handed to the client; each becomes one LZ4 frame on the wire.
const SEND_CHUNK_BYTES: usize = 1024 * 1024;

/// How an error is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// Network trouble, timeouts, overload, too many parts: wait and re-send.
    Transient,
    /// Wrong schema, auth, missing table, malformed data: retrying cannot help.
    Permanent,
}

/// ClickHouse error codes that mean "try again later".
///
/// 3 UNEXPECTED_END_OF_FILE, 159 TIMEOUT_EXCEEDED, 164 READONLY, 202
/// TOO_MANY_SIMULTANEOUS_QUERIES, 203 NO_FREE_CONNECTION, 209 SOCKET_TIMEOUT, 210
/// NETWORK_ERROR, 236 ABORTED, 241 MEMORY_LIMIT_EXCEEDED, 242 TABLE_IS_READ_ONLY, 252
/// TOO_MANY_PARTS, 279 ALL_CONNECTION_TRIES_FAILED, 285 TOO_FEW_LIVE_REPLICAS, 319
/// UNKNOWN_STATUS_OF_INSERT, 394 QUERY_WAS_CANCELLED, 425 SYSTEM_ERROR, 439
/// CANNOT_SCHEDULE_TASK, 999 KEEPER_EXCEPTION, 1000 POCO_EXCEPTION.
const TRANSIENT_CODES: &[u32] = &[
    3, 159, 164, 202, 203, 209, 210, 236, 241, 242, 252, 279, 285, 319, 394, 425, 439, 999, 1000,
];

/// Extracts `N` from a `Code: N. DB::Exception: ...` response body.
pub(crate) fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Classifies a client error.
pub(crate) fn classify(error: &clickhouse::error::Error) -> ErrorClass {
    match error {
        clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
            ErrorClass::Transient
        }
        clickhouse::error::Error::BadResponse(message) => match error_code(message) {
            Some(code) if TRANSIENT_CODES.contains(&code) => ErrorClass::Transient,
            Some(_) => ErrorClass::Permanent,
            // No ClickHouse code: a proxy or load balancer (502/503/504) answered.
            None => ErrorClass::Transient,
        },
        _ => ErrorClass::Permanent,
    }
}

/// Jittered exponential backoff between re-sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (1-based): "full jitter" in [d/2, d] with
    /// d = initial · 2^(attempt-1), capped at `max`, so that ingesters that failed together
    /// do not all come back at the same instant.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let nominal = self.initial.saturating_mul(1_u32 << exponent).min(self.max);
        let half = nominal / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// A ClickHouse table that takes RowBinary batches.
#[derive(Clone)]
pub(crate) struct ClickHouseSink {
    client: Client,
    insert_sql: String,
}

impl std::fmt::Debug for ClickHouseSink {
    // The client holds credentials: never print it.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClickHouseSink")
            .field("insert_sql", &self.insert_sql)
            .finish_non_exhaustive()
    }
}

impl ClickHouseSink {
    /// `columns` is the RowBinary column order the rows are encoded in.
    pub(crate) fn new(client: Client, database: &str, table: &str, columns: &[&str]) -> Self {
        let insert_sql = format!(
            "INSERT INTO {database}.{table} ({}) FORMAT RowBinary",
            columns.join(", ")
        );
        Self { client, insert_sql }
    }

    /// One attempt: sends the rows with the batch's deduplication token.
    pub(crate) async fn insert_once(
        &self,
        rows: &Bytes,
        token: &str,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .insert_formatted_with(self.insert_sql.clone())
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", token)
            // Synchronous: the 200 means the part is written, not merely buffered.
            .with_setting("async_insert", "0");
        let mut start = 0;
        while start < rows.len() {
            let end = (start + SEND_CHUNK_BYTES).min(rows.len());
            insert.send(rows.slice(start..end)).await?;
            start = end;
        }
        insert.end().await
    }
}

/// Turns a permanent client error into the ingester's error.
pub(crate) fn permanent(error: &clickhouse::error::Error) -> IngestError {
    let message = error.to_string();
    IngestError::ClickHousePermanent {
        code: error_code(&message),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_from_a_clickhouse_error_body() {
        let body = "Code: 60. DB::Exception: Table audit.nope does not exist. (UNKNOWN_TABLE) (version 26.9.2.1)";
        assert_eq!(error_code(body), Some(60));
        assert_eq!(error_code("bad gateway"), None);
    }

    #[test]
    fn classifies_like_an_operator_would() {
        let too_many_parts = clickhouse::error::Error::BadResponse(
            "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)".into(),
        );
        let unknown_table = clickhouse::error::Error::BadResponse(
            "Code: 60. DB::Exception: Table x.y does not exist. (UNKNOWN_TABLE)".into(),
        );
        let auth = clickhouse::error::Error::BadResponse(
            "Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)"
                .into(),
        );
        let proxy = clickhouse::error::Error::BadResponse("502 Bad Gateway".into());
        assert_eq!(classify(&too_many_parts), ErrorClass::Transient);
        assert_eq!(
            classify(&clickhouse::error::Error::TimedOut),
            ErrorClass::Transient
        );
        assert_eq!(classify(&proxy), ErrorClass::Transient);
        assert_eq!(classify(&unknown_table), ErrorClass::Permanent);
        assert_eq!(classify(&auth), ErrorClass::Permanent);
        assert_eq!(
            classify(&clickhouse::error::Error::NotEnoughData),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for attempt in 1..40 {
            let delay = policy.delay(attempt);
            let nominal = Duration::from_millis(100)
                .saturating_mul(1 << attempt.saturating_sub(1).min(20))
                .min(Duration::from_secs(2));
            assert!(
                delay >= nominal / 2 && delay <= nominal,
                "attempt {attempt}: {delay:?}"
            );
        }
    }
}
