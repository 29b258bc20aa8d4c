//! Fixtures for the whole-system tests: the pipeline's own (events, targets, ingesters),
//! on top of the shared test kit (`auditlog-testkit`: processes, HTTP, ClickHouse, Kafka).
//!
//! Every test runs against the real local stack (`make up`): the Apache Kafka broker and the
//! chDB-backed ClickHouse HTTP server. Each test gets its own topic and its own database, so
//! tests run in parallel and a failed run leaves nothing that confuses the next.

pub use auditlog_testkit::{
    HttpClient, HttpResponse, PrivateBroker, PrivateClickHouse, Record, clickhouse_client,
    clickhouse_execute, clickhouse_scalar, clickhouse_url, fresh_database, http_get, kafka_brokers,
    percent_encode, read_topic, unique_name,
};

pub mod pipeline;
pub mod sender;
pub mod stream;
