//! The one error type of the SDK.
//!
//! Every error about one event names the event's id, so a caller that logs the error can
//! find the event again. Messages are lowercase, without a trailing period.

use std::time::Duration;

use auditlog_event::EventError;
use rdkafka::error::KafkaError;
use uuid::Uuid;

/// Everything that can go wrong while configuring the producer or publishing an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// A setting is out of range or tries to change what the SDK fixes for correctness.
    #[error("invalid producer setting {key}: {reason}")]
    Config {
        /// The setting or librdkafka property at fault.
        key: String,
        /// Why it was refused.
        reason: String,
    },

    /// librdkafka refused to create the client (e.g. an unknown property).
    #[error("cannot create the kafka producer: {source}")]
    Client {
        /// librdkafka's error.
        source: KafkaError,
    },

    /// The thread that serves delivery reports could not be started.
    #[error("cannot start the kafka producer's polling thread: {source}")]
    Thread {
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The event failed validation or encoding; it was never enqueued.
    #[error("event {event_id} is invalid: {source}")]
    Invalid {
        /// The event's id (nil if the id itself is what is missing).
        event_id: Uuid,
        /// What is wrong with it.
        source: EventError,
    },

    /// `try_record` found the local queue full; the event was not enqueued.
    #[error(
        "the local queue is full ({capacity} events in flight); event {event_id} was not enqueued"
    )]
    QueueFull {
        /// The event's id.
        event_id: Uuid,
        /// The queue's capacity.
        capacity: usize,
    },

    /// librdkafka refused the message for a reason other than a full queue.
    #[error("event {event_id} could not be enqueued: {source}")]
    Enqueue {
        /// The event's id.
        event_id: Uuid,
        /// librdkafka's error.
        source: KafkaError,
    },

    /// Kafka did not take the event: the broker refused it or the delivery timeout passed.
    #[error("event {event_id} was not delivered: {source}")]
    Delivery {
        /// The event's id.
        event_id: Uuid,
        /// librdkafka's error, e.g. `MessageTimedOut` when no broker answered in time.
        source: KafkaError,
    },

    /// Waiting for room in the queue or for the broker's acknowledgement took too long.
    #[error("event {event_id} was not {stage} within {timeout:?}")]
    Timeout {
        /// The event's id.
        event_id: Uuid,
        /// What did not happen in time: `enqueued` or `confirmed`.
        stage: &'static str,
        /// How long the SDK waited.
        timeout: Duration,
    },

    /// `flush` returned with events still waiting for their acknowledgement.
    #[error("flush timed out after {timeout:?} with {undelivered} events not yet delivered")]
    FlushTimeout {
        /// Events enqueued and not yet acknowledged or failed.
        undelivered: usize,
        /// How long flush waited.
        timeout: Duration,
    },

    /// The topic does not exist on the cluster: clusters that refuse to create topics on
    /// first use say so within seconds (`auditlog migrate` creates the topics).
    #[error("kafka topic {topic:?} does not exist{}", for_event(.event_id))]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The event that could not be delivered, when the error is about one.
        event_id: Option<Uuid>,
    },

    /// The producer is shut down (or was dropped while the event waited).
    #[error("the producer is shut down; event {event_id} was not enqueued")]
    Closed {
        /// The event's id.
        event_id: Uuid,
    },
}

fn for_event(event_id: &Option<Uuid>) -> String {
    event_id
        .map(|event_id| format!("; event {event_id} was not delivered"))
        .unwrap_or_default()
}

impl ProducerError {
    /// The error for a message librdkafka refused or failed: a missing topic is named as
    /// such, anything else keeps librdkafka's own words.
    pub(crate) fn from_kafka(
        event_id: Uuid,
        topic: &str,
        source: KafkaError,
        enqueue: bool,
    ) -> Self {
        use rdkafka::types::RDKafkaErrorCode::{UnknownTopic, UnknownTopicOrPartition};
        match source.rdkafka_error_code() {
            Some(UnknownTopic | UnknownTopicOrPartition) => ProducerError::MissingTopic {
                topic: topic.to_owned(),
                event_id: Some(event_id),
            },
            _ if enqueue => ProducerError::Enqueue { event_id, source },
            _ => ProducerError::Delivery { event_id, source },
        }
    }

    /// The id of the event the error is about, if it is about one.
    pub fn event_id(&self) -> Option<Uuid> {
        match self {
            ProducerError::Invalid { event_id, .. }
            | ProducerError::QueueFull { event_id, .. }
            | ProducerError::Enqueue { event_id, .. }
            | ProducerError::Delivery { event_id, .. }
            | ProducerError::Timeout { event_id, .. }
            | ProducerError::Closed { event_id } => Some(*event_id),
            ProducerError::MissingTopic { event_id, .. } => *event_id,
            ProducerError::Config { .. }
            | ProducerError::Client { .. }
            | ProducerError::Thread { .. }
            | ProducerError::FlushTimeout { .. } => None,
        }
    }

    /// Whether trying the same event again later may succeed (a full queue, a broker
    /// outage); invalid events and bad settings never will.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ProducerError::QueueFull { .. }
                | ProducerError::Delivery { .. }
                | ProducerError::Timeout { .. }
                | ProducerError::FlushTimeout { .. }
        )
    }
}
