//! The ingester: a Kafka consumer group that writes audit events into ClickHouse, with no
//! loss and no visible duplicates.
//!
//! ```text
//!  Kafka topic ─▶ source ─▶ decode ─▶ batch (per partition) ─▶ write ─▶ commit
//!                 (thread)   (Avro)    deterministic ranges     intent, dead letters, insert
//!                                                              │
//!                                            audit-events-dlq ◀┘ (poison, with reason)
//! ```
//!
//! The guarantee, in short (the full argument is in `docs/delivery.md`):
//! - an offset is committed only after every message before it is in ClickHouse or in the
//!   dead-letter topic (contiguous prefix, per partition);
//! - a batch's offset range is recorded before its insert, and the insert carries a
//!   deduplication token derived from that range, so re-sending it after any crash is
//!   dropped by ClickHouse;
//! - the table is a ReplacingMergeTree keyed on `(time, id)`, and queries read it with
//!   `FINAL`, so even a copy that escaped both (e.g. a zombie member during a rebalance)
//!   is never visible.

mod batch;
mod config;
mod dlq;
mod error;
mod health;
mod intent;
pub mod metrics;
mod migrate;
mod offsets;
mod pipeline;
mod row;
mod sink;
mod source;
mod topics;

pub use batch::BatchLimits;
pub use config::{ClickHouseConfig, IngesterConfig, PoisonPolicy};
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
pub use migrate::{
    CLUSTER_MIGRATIONS, MIGRATIONS, Migration, MigrationReport, SchemaTarget, apply as migrate,
    is_identifier,
};
pub use pipeline::{IngestReport, run};
pub use row::{COLUMNS, RowEncoder};
pub use sink::RetryPolicy;
pub use topics::{TopicOutcome, TopicSpec, ensure_topics};
