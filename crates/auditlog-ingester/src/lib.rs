//! The ingester: a Kafka consumer group that writes audit events into ClickHouse, with no
//! loss and no visible duplicates.
//!
//! ```text
//!  Kafka topic ─▶ source ─▶ decode ─▶ batch (per partition) ─▶ writer ─▶ commit
//!                 (thread)   (Avro)    deterministic ranges     intent, dead letters, insert
//!                                                              │  one retry policy,
//!                                            audit-events-dlq ◀┘  bounded by the shutdown
//! ```
//!
//! Running one member of the group (the binary's `auditlog ingest` does this, plus flags,
//! signals and the `/healthz`, `/readyz` and `/metrics` endpoints):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use auditlog_ingester::{
//!     BatchLimits, Health, IngesterConfig, InsertCompression, PoisonPolicy, RetryPolicy,
//! };
//! use auditlog_store::ClickHouseConfig;
//!
//! # async fn example() -> Result<(), auditlog_ingester::IngestError> {
//! let config = IngesterConfig {
//!     brokers: "127.0.0.1:9092".into(),
//!     topic: "audit-events".into(),
//!     dlq_topic: "audit-events-dlq".into(),
//!     group: "auditlog-ingester".into(),
//!     instance_id: None,
//!     kafka_properties: Default::default(),
//!     clickhouse: ClickHouseConfig {
//!         url: "http://127.0.0.1:8123".into(),
//!         database: "audit".into(),
//!         table: "audit_logs".into(),
//!         user: "default".into(),
//!         password: String::new(),
//!         cluster: false,
//!     },
//!     batch: BatchLimits::default(),
//!     max_in_flight_batches: 4,
//!     insert_compression: InsertCompression::Lz4,
//!     retry: RetryPolicy::default(),
//!     poison: PoisonPolicy::default(),
//!     revoke_timeout: Duration::from_secs(30),
//!     shutdown_timeout: Duration::from_secs(30),
//!     checkpoints: None,
//! };
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let health = Health::default();
//! let ingester = tokio::spawn(auditlog_ingester::run(config, health.clone(), shutdown));
//! // ... on SIGTERM:
//! stop.send_replace(true);
//! let report = ingester.await.expect("ingester task")?;
//! if report.unwritten_batches > 0 {
//!     // The shutdown timeout passed first: nothing lost, a restart writes them.
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Operators read the dead-letter topic back and replay it with the same crate (the binary's
//! `auditlog dlq inspect|replay`). A letter's fields come from its Kafka headers, whose names
//! are in [`headers`]:
//!
//! ```no_run
//! use auditlog_ingester::{DeadLetterFilter, select_dead_letters};
//! use rdkafka::ClientConfig;
//!
//! # fn example() -> Result<(), auditlog_ingester::IngestError> {
//! let mut kafka = ClientConfig::new();
//! kafka.set("bootstrap.servers", "127.0.0.1:9092");
//! let filter = DeadLetterFilter {
//!     kind: Some("unknown_schema".into()),
//!     ..DeadLetterFilter::default()
//! };
//! // One letter per source position: copies from a crash or a failed replay collapse.
//! let selection = select_dead_letters(&kafka, "audit-events-dlq", &filter)?;
//! for letter in &selection.letters {
//!     println!("{}/{}: {}", letter.source_partition, letter.source_offset, letter.reason);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Where things live (modules follow the data; none imports another in a circle):
//! - `pipeline`: the coordinator (decode, batch, commit) and [`run`]; its tests are in
//!   `pipeline/tests.rs`.
//! - `decode`: a message to its stored row, read in place when it can be (the fast path) or
//!   decoded and validated (the path that decides what is poison).
//! - `source`: the Kafka consumer and its settings, on its own thread; it hands messages
//!   over in chunks whose buffers come back to be reused.
//! - `stages`: the hot path's time per stage (hand-over, decode, encode, compression).
//! - `batch` and `offsets`: the coordinator's bookkeeping, including each batch's digest.
//! - `writer`, with `intent`, `dlq` and `sink`: where a sealed batch goes.
//! - `dlq`: the dead-letter topic, in three parts: `dlq/letter.rs`, the dead letter itself
//!   (the poison message, the letter read back, its [`headers`]); `dlq/producer.rs`, the
//!   producer the write tasks use; `dlq/replay.rs`, the operators' read, select and replay.
//! - `checkpoints`: signing the chain heads; `topics`: creating the topics.
//! - `retry` and `stop`: the one retry policy and the one shutdown signal every task watches.
//! - `config`, `error`, `health` and [`metrics`]: what a run is given, how it fails, what it
//!   reports.
//!
//! The guarantee, in short (the full argument is in `docs/delivery.md`):
//! - an offset is committed only after every message before it is in ClickHouse or in the
//!   dead-letter topic (contiguous prefix, per partition);
//! - a batch's offset range is recorded before its insert, and the insert carries a
//!   deduplication token derived from that range, so re-sending it after any crash is
//!   dropped by ClickHouse;
//! - the table is a ReplacingMergeTree keyed on `(time, id)`, and queries keep one row per
//!   key and count distinct ids, so even a copy that escaped both (e.g. a zombie member
//!   during a rebalance) is never visible.

mod batch;
mod checkpoints;
mod config;
mod decode;
mod dlq;
mod error;
mod health;
mod insert_body;
mod intent;
pub mod metrics;
mod offsets;
mod pipeline;
mod retry;
mod revocations;
mod row_buffers;
mod sink;
mod source;
mod stages;
mod stop;
mod topics;
mod writer;

pub use batch::BatchLimits;
pub use checkpoints::{CheckpointConfig, DEFAULT_CHECKPOINT_INTERVAL, read_checkpoint_topic};
pub use config::{IngesterConfig, InsertCompression, PoisonPolicy};
pub use dlq::letter::{DeadLetter, headers};
pub use dlq::replay::{
    DeadLetterFilter, DeadLetterSelection, SkipReason, read_dead_letters, replay_dead_letters,
    select_dead_letters,
};
pub use error::IngestError;
pub use health::{Health, HealthSnapshot};
pub use pipeline::{IngestReport, run};
pub use retry::RetryPolicy;
pub use topics::{TopicOutcome, TopicSpec, ensure_topics};
