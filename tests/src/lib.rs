//! Shared fixtures for the whole-system tests.
//!
//! Every test runs against the real local stack (`make up`): tansu on the Kafka API and the
//! chDB-backed ClickHouse HTTP server. Each test gets its own topic and its own database, so
//! tests run in parallel and a failed run leaves nothing that confuses the next.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default Kafka bootstrap servers of the local stack.
pub const DEFAULT_KAFKA_BROKERS: &str = "127.0.0.1:9092";
/// Default ClickHouse HTTP URL of the local stack.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

/// Kafka bootstrap servers: `AUDITLOG_KAFKA_BROKERS` or the local default.
pub fn kafka_brokers() -> String {
    std::env::var("AUDITLOG_KAFKA_BROKERS").unwrap_or_else(|_| DEFAULT_KAFKA_BROKERS.to_owned())
}

/// ClickHouse HTTP URL: `AUDITLOG_CLICKHOUSE_URL` or the local default.
pub fn clickhouse_url() -> String {
    std::env::var("AUDITLOG_CLICKHOUSE_URL").unwrap_or_else(|_| DEFAULT_CLICKHOUSE_URL.to_owned())
}

/// A name no other test (in this or another process) uses: `prefix_<pid>_<nanos>_<n>`.
///
/// Only `[a-z0-9_]`, so it is valid as a topic, a database and a table name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{sequence}", std::process::id())
}

/// A ClickHouse client for the local stack, with no database selected.
pub fn clickhouse_client() -> clickhouse::Client {
    clickhouse::Client::default().with_url(clickhouse_url())
}

/// Creates a new, empty database and returns a client that uses it, with its name.
pub async fn fresh_database(prefix: &str) -> (clickhouse::Client, String) {
    let database = unique_name(prefix);
    clickhouse_client()
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .unwrap_or_else(|error| panic!("create database {database}: {error}"));
    (clickhouse_client().with_database(&database), database)
}

pub mod pipeline;
