//! The one error type of the ingester.

/// Everything that stops the ingester. Transient ClickHouse trouble never surfaces here:
/// it is retried. What does surface means "stop, commit nothing more, tell the operator".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Kafka refused something the ingester cannot work without (subscribe, create client).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A topic the ingester needs does not exist (`auditlog migrate` creates them).
    #[error("kafka topic {topic:?} does not exist (run `auditlog migrate` to create the topics)")]
    MissingTopic {
        /// The topic's name.
        topic: String,
    },
    /// Topics are to be created with more replicas than the cluster has brokers.
    #[error(
        "the kafka cluster has {brokers} broker(s), fewer than the replication factor {replication_factor} to create {topics:?} with"
    )]
    TooFewBrokers {
        /// Brokers the cluster's metadata lists.
        brokers: usize,
        /// The replication factor asked for.
        replication_factor: i32,
        /// The missing topics that were to be created.
        topics: Vec<String>,
    },
    /// The broker refused to create a topic.
    #[error("creating kafka topic {topic:?} failed: {message}")]
    Topic {
        /// The topic's name.
        topic: String,
        /// The broker's error.
        message: String,
    },
    /// ClickHouse answered with an error that retrying cannot fix (missing table, auth,
    /// type mismatch). Nothing after the last commit is lost: it is consumed again on restart.
    #[error("clickhouse rejected the insert permanently (code {code:?}): {message}")]
    ClickHousePermanent {
        /// ClickHouse's error code, when the response carried one.
        code: Option<u32>,
        /// The server's message.
        message: String,
    },
    /// The table's schema or a stored row was refused.
    #[error(transparent)]
    Store(#[from] auditlog_store::StoreError),
    /// Too many poison messages in a window: rather than drain the topic into the
    /// dead-letter topic, stop and let an operator look.
    #[error(
        "too many poison messages: {num_poison} of the last {window} messages could not be ingested (limit {limit}); last reason: {last_reason}"
    )]
    PoisonFlood {
        /// Poison messages seen in the window.
        num_poison: usize,
        /// Messages in the window.
        window: usize,
        /// The configured limit.
        limit: usize,
        /// The reason of the latest poison message.
        last_reason: String,
    },
    /// The dead-letter topic kept refusing a poison message.
    #[error("dead-letter produce failed for {topic}/{partition}@{offset}: {message}")]
    DeadLetter {
        /// Source topic.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The producer's error.
        message: String,
    },
    /// A dead letter without a source position cannot be replayed: if it failed again,
    /// nothing could tell its new letter from a new poison message.
    #[error(
        "dead letter {partition}@{offset} names no source position (not written by an ingester); it cannot be replayed"
    )]
    ReplayWithoutPosition {
        /// Its dead-letter partition.
        partition: i32,
        /// Its dead-letter offset.
        offset: i64,
    },
    /// Shutdown's deadline passed while a stage was still retrying. Not an error of the
    /// data: what was not written is not committed, and a restart consumes it again.
    #[error(
        "the shutdown deadline passed while the {stage} stage was still retrying; a restart redoes it"
    )]
    ShutdownDeadline {
        /// The stage that gave up.
        stage: &'static str,
    },
    /// An internal stage ended unexpectedly.
    #[error("pipeline stage failed: {0}")]
    Pipeline(String),
}
