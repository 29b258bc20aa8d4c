//! The ingester's typed configuration. The binary builds it from flags, environment and
//! the TOML file; settings that correctness depends on are not here, they are fixed in code.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::IngestError;
use crate::batch::BatchLimits;
use crate::retry::RetryPolicy;
use auditlog_store::{ClickHouseConfig, is_identifier};

/// When to stop rather than dead-letter: more than `max_poison` poison messages among the
/// last `window` messages consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoisonPolicy {
    /// Messages in the sliding window.
    pub window: usize,
    /// Poison messages tolerated in the window.
    pub max_poison: usize,
}

impl Default for PoisonPolicy {
    /// 10% of the last 1,000: a stray bad producer is dead-lettered, a wrong topic or a
    /// schema rollout gone wrong stops the ingester before it empties the topic.
    fn default() -> Self {
        Self {
            window: 1_000,
            max_poison: 100,
        }
    }
}

/// How insert bodies travel to ClickHouse.
///
/// Measured on generated traffic: LZ4 shrinks the RowBinary body about 2.7-fold for under a
/// microsecond of CPU per event, which a server across a network repays many times over; on
/// a server on the same host it buys nothing, so `none` saves that CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertCompression {
    /// Uncompressed bodies.
    None,
    /// ClickHouse's LZ4 block framing (`decompress=1`): the default.
    #[default]
    Lz4,
}

impl InsertCompression {
    /// The setting's name: `none` or `lz4`.
    pub fn as_str(self) -> &'static str {
        match self {
            InsertCompression::None => "none",
            InsertCompression::Lz4 => "lz4",
        }
    }
}

impl std::fmt::Display for InsertCompression {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for InsertCompression {
    type Err = IngestError;

    /// Parses `none` or `lz4`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Ok(InsertCompression::None),
            "lz4" => Ok(InsertCompression::Lz4),
            _ => Err(IngestError::Config(format!(
                "insert compression {text:?} is not one of none, lz4"
            ))),
        }
    }
}

/// Everything `auditlog ingest` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct IngesterConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The topic to consume.
    pub topic: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// The consumer group.
    pub group: String,
    /// This member's static identity in the group (`group.instance.id`), if any: stable
    /// across restarts (a StatefulSet pod name), so a restart keeps its partitions.
    pub instance_id: Option<String>,
    /// Extra librdkafka properties (security, timeouts), passed through as given.
    pub kafka_properties: BTreeMap<String, String>,
    /// The ClickHouse target.
    pub clickhouse: ClickHouseConfig,
    /// When batches are sealed.
    pub batch: BatchLimits,
    /// Batches being written at once (across partitions).
    pub max_in_flight_batches: usize,
    /// How insert bodies are compressed.
    pub insert_compression: InsertCompression,
    /// Backoff between re-sends.
    pub retry: RetryPolicy,
    /// When too much poison stops the ingester.
    pub poison: PoisonPolicy,
    /// How long a revocation may take to flush and commit before it lets go anyway.
    pub revoke_timeout: Duration,
    /// How long shutdown may take to flush and commit before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Signed checkpoints: the key, the interval and the Kafka topic; `None` digests
    /// batches but signs nothing.
    pub checkpoints: Option<crate::CheckpointConfig>,
}

impl IngesterConfig {
    /// Checks values that would otherwise fail late or in odd ways.
    pub fn validate(&self) -> Result<(), IngestError> {
        for (what, name) in [
            ("clickhouse database", &self.clickhouse.database),
            ("clickhouse table", &self.clickhouse.table),
        ] {
            if !is_identifier(name) {
                return Err(IngestError::Config(format!(
                    "{what} {name:?} is not a valid identifier ([A-Za-z_][A-Za-z0-9_]*)"
                )));
            }
        }
        if self.topic.is_empty() || self.dlq_topic.is_empty() || self.group.is_empty() {
            return Err(IngestError::Config(
                "topic, dead-letter topic and group must not be empty".into(),
            ));
        }
        if self
            .instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(IngestError::Config(
                "the kafka instance id must not be empty (leave it unset for dynamic membership)"
                    .into(),
            ));
        }
        if let Some(checkpoints) = &self.checkpoints {
            if checkpoints.topic.is_empty()
                || checkpoints.topic == self.topic
                || checkpoints.topic == self.dlq_topic
            {
                return Err(IngestError::Config(
                    "the checkpoint topic must be set and differ from the other topics".into(),
                ));
            }
            if checkpoints.interval.is_zero() {
                return Err(IngestError::Config(
                    "the checkpoint interval must be above zero".into(),
                ));
            }
        }
        if self.topic == self.dlq_topic {
            return Err(IngestError::Config(
                "the dead-letter topic must differ from the topic".into(),
            ));
        }
        if self.batch.max_rows == 0 || self.batch.max_bytes == 0 || self.max_in_flight_batches == 0
        {
            return Err(IngestError::Config(
                "batch rows, batch bytes and in-flight batches must be at least 1".into(),
            ));
        }
        for key in self.kafka_properties.keys() {
            if FIXED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                return Err(IngestError::Config(format!(
                    "kafka property {key:?} is fixed by the ingester and cannot be overridden"
                )));
            }
        }
        Ok(())
    }
}

/// librdkafka properties the ingester owns, because delivery guarantees depend on them.
pub(crate) const FIXED_KAFKA_PROPERTIES: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "group.instance.id",
    "bootstrap.servers",
    "isolation.level",
    "enable.idempotence",
    "acks",
];
