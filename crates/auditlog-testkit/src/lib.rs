//! The fixtures every test and bench of auditlog needs, in one place.
//!
//! Tests run against real components: the local stack's Apache Kafka broker and ClickHouse
//! server (`make up`), or private instances of either that a test may stop, kill or cut off.
//! Each test names its own topics and databases with [`unique_name`], so tests run in parallel
//! and a failed run leaves nothing that confuses the next.
//!
//! ```text
//!  test ──▶ unique_name ──▶ create_topic / fresh_database ──▶ shared stack (:9092, :8123)
//!       ├─▶ PrivateBroker / PrivateClickHouse ──▶ a server of its own (free ports, temp dirs)
//!       ├─▶ KafkaCluster ──▶ three Kafka nodes of its own, to kill, stop and restart
//!       ├─▶ S3Server / OpenSearchNode ──▶ streaming destinations of its own (signed S3, REST)
//!       ├─▶ SplunkHecReceiver / WebhookReceiver ──▶ HTTP destinations that check and record
//!       │     (HEC's token, events and acks; the webhook's HMAC signature and freshness)
//!       └─▶ AuditlogCommand ──▶ AuditlogProcess (log file, ops port) ◀── http_get / HttpClient
//! ```
//!
//! ```no_run
//! # async fn example() {
//! use auditlog_testkit::{create_topic, kafka_brokers, read_topic, unique_name};
//! use std::time::Duration;
//!
//! let topic = unique_name("example");
//! create_topic(&kafka_brokers(), &topic, 2).await;
//! // ... produce to `topic` ...
//! let records = read_topic(&kafka_brokers(), &topic, 2, 10, Duration::from_secs(30)).await;
//! assert!(records.len() <= 10);
//! # }
//! ```
//!
//! This crate depends on no auditlog crate, so every crate's tests may use it.

mod clickhouse_server;
mod error;
mod http;
mod http_request;
mod independent;
mod kafka;
mod kafka_broker;
mod kafka_cluster;
mod opensearch;
mod paths;
mod process;
mod seaweedfs;
mod sigv4;
mod splunk_hec;
mod webhook_receiver;

pub use clickhouse_server::{
    PrivateClickHouse, clickhouse_client, clickhouse_execute, clickhouse_scalar, clickhouse_url,
    fresh_database,
};
pub use error::Error;
pub use http::{HttpClient, HttpResponse, http_get, percent_encode};
pub use http_request::http_request;
pub use independent::independent_proof_check;
pub use kafka::{Record, create_topic, kafka_brokers, read_topic};
pub use kafka_broker::PrivateBroker;
pub use kafka_cluster::KafkaCluster;
pub use opensearch::OpenSearchNode;
pub use paths::{auditlog_binary, free_port, log_dir, repo_root, tools_dir, unique_name};
pub use process::{AuditlogCommand, AuditlogProcess, metric_sum};
pub use seaweedfs::{S3_REGION, S3Server};
pub use sigv4::{
    SigV4Credentials, SigV4Request, amz_date, sha256_hex, sigv4_authorization, uri_encode,
};
pub use splunk_hec::SplunkHecReceiver;
pub use webhook_receiver::WebhookReceiver;
