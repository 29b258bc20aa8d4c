//! The one error type of the verifier crate: what kept it from reading the evidence, never
//! what the evidence shows (that is the report's).

use std::path::PathBuf;

use uuid::Uuid;

/// Why verification or a proof could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A ClickHouse read that failed, with what was being read.
    #[error("{what}")]
    Read {
        /// What was being read, e.g. "reading the digests of partition 3".
        what: String,
        /// The client's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A ClickHouse request that failed to start or stream.
    #[error(transparent)]
    ClickHouse(#[from] clickhouse::error::Error),
    /// Stored rows that do not split into rows of the stored columns.
    #[error(transparent)]
    Decode(#[from] auditlog_store::StoreError),
    /// A stream of stored rows that stopped in the middle of one.
    #[error("the answer of ClickHouse ends inside a row")]
    Truncated,
    /// The checkpoint topic could not be read to its end.
    #[error("reading the checkpoints from kafka topic {topic:?}")]
    Kafka {
        /// The checkpoint topic.
        topic: String,
        /// The consumer's error.
        #[source]
        source: auditlog_ingester::IngestError,
    },
    /// The blocking Kafka read did not finish (panicked or was cancelled).
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// A `file:` checkpoint source that could not be read.
    #[error("reading checkpoints from {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `verify --event` of an id that no stored row has.
    #[error("no event {id} is stored")]
    NoSuchEvent {
        /// The id asked about.
        id: Uuid,
    },
    /// `verify --event` of an event that cannot be proven.
    #[error("event {id} cannot be proven: {reason}")]
    Unprovable {
        /// The id asked about.
        id: Uuid,
        /// Why (stored before digests, or in a batch that no longer verifies).
        reason: String,
    },
    /// Parts that passed every check and still do not make a proof.
    #[error("the proof could not be assembled")]
    ProofAssembly,
}

/// Names what a failed ClickHouse read was reading.
pub(crate) trait ReadContext<T> {
    fn reading(self, what: impl FnOnce() -> String) -> Result<T, VerifyError>;
}

impl<T> ReadContext<T> for Result<T, clickhouse::error::Error> {
    fn reading(self, what: impl FnOnce() -> String) -> Result<T, VerifyError> {
        self.map_err(|source| VerifyError::Read {
            what: what(),
            source,
        })
    }
}
