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
//! use auditlog_ingester::{BatchLimits, Health, IngesterConfig, PoisonPolicy, RetryPolicy};
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
//! Modules follow the data: `source` (Kafka consumer and its settings), `pipeline` (the
//! coordinator: decode, batch, commit), `batch` and `offsets` (its bookkeeping, including each
//! batch's digest), `writer` with `intent`, `dlq` and `sink` (where a batch goes),
//! `checkpoints` (signing the chain heads), `retry` and `stop` (the one retry policy and the
//! one shutdown signal every task watches).
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
mod dlq;
mod error;
mod health;
mod intent;
pub mod metrics;
mod offsets;
mod pipeline;
mod retry;
mod sink;
mod source;
mod stop;
mod topics;
mod writer;

pub use batch::BatchLimits;
pub use checkpoints::{CheckpointConfig, DEFAULT_CHECKPOINT_INTERVAL, read_checkpoint_topic};
pub use config::{IngesterConfig, PoisonPolicy};
pub use dlq::{
    DeadLetter, DeadLetterFilter, DeadLetterSelection, HEADER_DEAD_LETTERED_AT, HEADER_KIND,
    HEADER_REASON, HEADER_REPLAY_LETTER_OFFSET, HEADER_REPLAY_LETTER_PARTITION,
    HEADER_REPLAY_ORIGIN_OFFSET, HEADER_REPLAY_ORIGIN_PARTITION, HEADER_REPLAY_ORIGIN_TIMESTAMP,
    HEADER_REPLAY_ORIGIN_TOPIC, HEADER_REPLAY_REASON, HEADER_REPLAYED_OFFSET,
    HEADER_REPLAYED_PARTITION, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TIMESTAMP, HEADER_SOURCE_TOPIC, SkipReason, read_dead_letters,
    replay_dead_letters, select_dead_letters,
};
pub use error::IngestError;
pub use health::{Health, HealthSnapshot};
pub use pipeline::{IngestReport, run};
pub use retry::RetryPolicy;
pub use topics::{TopicOutcome, TopicSpec, ensure_topics};
