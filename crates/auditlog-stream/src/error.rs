//! The one error type of the streaming crate.

use thiserror::Error;

/// Why a stream could not be configured or run.
///
/// Delivery failures are not here: a sink that cannot deliver keeps retrying and reports it
/// through its health and metrics ([`crate::DeliveryError`] classifies each attempt).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A `[[stream.sinks]]` entry is wrong; the message names the sink and the setting.
    #[error("stream sink {sink:?}: {message}")]
    Config {
        /// The sink's name (or its position, `#N`, when it has none).
        sink: String,
        /// What is wrong, and what is expected.
        message: String,
    },
    /// A sink's `filter` is not valid in Coder's filter language; `message` is the API's text.
    #[error("stream sink {sink:?}: invalid filter {filter:?}: {message}")]
    Filter {
        /// The sink's name.
        sink: String,
        /// The filter as written.
        filter: String,
        /// The same validations the API answers with, one per line.
        message: String,
    },
    /// No sink is configured, or `--sink` named none that exists.
    #[error("{0}")]
    NoSinks(String),
    /// The Kafka client failed in a way no retry helps (bad settings, unknown topic).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// An archive could not be read (`verify --archive`): the store's answer.
    #[error("archive: {0}")]
    Archive(String),
    /// `auditlog stream backfill` could not re-send its range: an invalid range, offsets past
    /// the topic's retention, the store failing, or a batch the destination kept refusing.
    #[error("backfill: {0}")]
    Backfill(String),
    /// A sink task ended unexpectedly.
    #[error("sink {sink:?} stopped: {message}")]
    SinkStopped {
        /// The sink's name.
        sink: String,
        /// Why.
        message: String,
    },
}

impl StreamError {
    /// A configuration error of `sink`.
    pub(crate) fn config(sink: &str, message: impl Into<String>) -> Self {
        Self::Config {
            sink: sink.to_owned(),
            message: message.into(),
        }
    }
}
