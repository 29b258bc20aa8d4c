//! Each sink's dead-letter topic: where an event goes that its destination refused for good,
//! so that the partition moves on and the event is still kept, with the reason.
//!
//! ```text
//!  Sink::deliver ──Err(Permanent: offsets + reasons)──▶ DeadLetters::send (acks=all, each)
//!                                                           │ every letter acknowledged
//!                                                           ▼
//!                                                  commit after the batch
//! ```
//!
//! A letter follows the ingester's dead-letter conventions (`audit-events-dlq`): the same
//! `auditlog.dlq.*` headers for the reason, its class and the source topic, partition and
//! offset, so the same tools read both. Three headers are the stream's own: the sink, its
//! format and the event id. The value is the event as the sink formatted it (what the
//! destination refused), keyed by the event id.

use std::collections::BTreeMap;
use std::time::Duration;

use auditlog_ingester::headers::{
    HEADER_DEAD_LETTERED_AT, HEADER_KIND, HEADER_REASON, HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use auditlog_ingester::{IngestError, TopicSpec, ensure_topics};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::StreamError;
use crate::sink::{Batch, Record, Rejection};

/// Header of a sink's dead letter: the sink that could not deliver it.
pub const HEADER_SINK: &str = "auditlog.dlq.sink";
/// Header of a sink's dead letter: the format of its value (`coder`, `ocsf`).
pub const HEADER_FORMAT: &str = "auditlog.dlq.format";
/// Header of a sink's dead letter: the event id.
pub const HEADER_EVENT_ID: &str = "auditlog.dlq.event_id";

/// Writes one sink's dead letters; clones share the producer.
#[derive(Clone)]
pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    sink: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// Makes sure the topic exists (one partition, the broker's replication, when it must be
    /// created; an existing one is left as it is) and makes the producer.
    pub(crate) async fn open(
        kafka: &ClientConfig,
        topic: String,
        sink: &str,
    ) -> Result<Self, StreamError> {
        let spec = TopicSpec {
            name: topic.clone(),
            partitions: 1,
            replication_factor: None,
            configs: BTreeMap::new(),
        };
        match ensure_topics(kafka, &[spec]).await {
            Ok(outcomes) => {
                for outcome in outcomes {
                    tracing::info!(sink, %outcome, "dead-letter topic");
                }
            }
            // Kafka errors are worth another try at start; the rest are settings.
            Err(IngestError::Kafka(error)) => return Err(StreamError::Kafka(error)),
            Err(error) => {
                return Err(StreamError::config(
                    sink,
                    format!("dead_letter_topic {topic:?}: {error}"),
                ));
            }
        }
        let mut config = kafka.clone();
        // Correctness settings, as for the ingester's letters: no duplicates from producer
        // retries, and an acknowledgement means every in-sync replica has the letter.
        config.set("enable.idempotence", "true").set("acks", "all");
        Ok(Self {
            producer: config.create()?,
            topic,
            sink: sink.to_owned(),
        })
    }

    /// The topic written to.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes one letter and waits for Kafka's acknowledgement; then counts it and logs it
    /// with the event id and the reason.
    pub(crate) async fn send(
        &self,
        batch: &Batch,
        record: &Record,
        rejection: &Rejection,
    ) -> Result<(), KafkaError> {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let partition = batch.partition.to_string();
        let offset = record.offset.to_string();
        let id = record.id.to_string();
        let format = batch.format.to_string();
        let headers = OwnedHeaders::new_with_capacity(9)
            .insert(header(HEADER_REASON, &rejection.reason))
            .insert(header(HEADER_KIND, &rejection.kind))
            .insert(header(HEADER_SOURCE_TOPIC, &batch.topic))
            .insert(header(HEADER_SOURCE_PARTITION, &partition))
            .insert(header(HEADER_SOURCE_OFFSET, &offset))
            .insert(header(HEADER_DEAD_LETTERED_AT, &now))
            .insert(header(HEADER_SINK, &self.sink))
            .insert(header(HEADER_FORMAT, &format))
            .insert(header(HEADER_EVENT_ID, &id));
        let letter = FutureRecord::to(&self.topic)
            .key(&id)
            .payload(&record.json)
            .headers(headers);
        self.producer
            .send(letter, Duration::from_secs(30))
            .await
            .map_err(|(error, _)| error)?;
        metrics::counter!(
            crate::metrics::EVENTS_DEAD_LETTERED,
            "sink" => self.sink.clone(),
            "reason" => rejection.kind.clone()
        )
        .increment(1);
        tracing::warn!(
            sink = %self.sink,
            event_id = %record.id,
            partition = batch.partition,
            offset = record.offset,
            kind = %rejection.kind,
            reason = %rejection.reason,
            dead_letter_topic = %self.topic,
            "the destination refused an event for good; it is in the sink's dead-letter topic"
        );
        Ok(())
    }
}

/// Whether `rejected` names records of `batch` only, each once, and at least one: what a
/// [`crate::FailureClass::Permanent`] answer must hold before the batch counts as done.
pub(crate) fn names_records_of(batch: &Batch, rejected: &[Rejection]) -> bool {
    let offsets: std::collections::BTreeSet<i64> =
        rejected.iter().map(|rejection| rejection.offset).collect();
    !rejected.is_empty()
        && offsets.len() == rejected.len()
        && offsets
            .iter()
            .all(|offset| batch.records.iter().any(|record| record.offset == *offset))
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
