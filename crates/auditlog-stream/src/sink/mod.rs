//! Sinks: where batches go, one module per kind.
//!
//! ```text
//!  engine ──Batch { topic, partition, first..=last offset, records }──▶ Sink::deliver
//!     ▲                                                                    │
//!     └──────────── Ok: the destination confirmed ── commit last + 1 ◀─────┘
//!                   Err(DeliveryError): back off, deliver the same batch again
//! ```
//!
//! A batch holds one partition's messages `first_offset..=last_offset`; `records` are the
//! events among them that passed the filter, in offset order, formatted. The engine delivers
//! a partition's batches in order and one at a time, and a retried batch is the same batch
//! (same range, same records), so a destination can make retries idempotent from the range:
//! the webhook sends it as `X-Auditlog-Batch`; an object store would name the object after it.
//!
//! Kinds: `webhook` (signed NDJSON over HTTP), `splunk_hec` (Splunk's HTTP Event Collector),
//! `s3` (gzipped NDJSON objects named by range, with a chain of manifests; `s3_client`,
//! `sigv4` and `gzip` serve it) and `opensearch` (the bulk API, the event id as `_id`). A
//! kind is a module here implementing [`Sink`], a variant of [`crate::Destination`] with its
//! settings, and a line in `build`.

mod checkpoints;
pub(crate) mod gzip;
pub(crate) mod http;
pub mod opensearch;
pub mod s3;
pub(crate) mod s3_client;
pub(crate) mod settings;
mod sigv4;
pub mod splunk_hec;
pub mod webhook;

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::Destination;
use crate::format::Format;

/// One event of a batch, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the batch's partition.
    pub offset: i64,
    /// The event id: the key receivers deduplicate on.
    pub id: Uuid,
    /// When the event happened.
    pub time: OffsetDateTime,
    /// The event in the sink's format: one line of compact JSON, no newline.
    pub json: Vec<u8>,
}

/// A partition's contiguous range of messages, and the events among them to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The topic read.
    pub topic: String,
    /// The partition read.
    pub partition: i32,
    /// The first offset the batch covers.
    pub first_offset: i64,
    /// The last offset the batch covers (inclusive); its commit is `last_offset + 1`.
    pub last_offset: i64,
    /// The events that passed the filter, in offset order.
    pub records: Vec<Record>,
    /// Messages of the range the filter left out.
    pub filtered: u64,
    /// Messages of the range that were not valid events (skipped; the ingester
    /// dead-letters them).
    pub malformed: u64,
    /// The format of `records`.
    pub format: Format,
}

impl Batch {
    /// `topic/partition/first-last`: names the range, the same for every retry.
    pub fn range_key(&self) -> String {
        format!(
            "{}/{}/{}-{}",
            self.topic, self.partition, self.first_offset, self.last_offset
        )
    }

    /// The records as NDJSON: one line each, each ending in a newline.
    pub fn ndjson(&self) -> Vec<u8> {
        let size = self
            .records
            .iter()
            .map(|record| record.json.len() + 1)
            .sum();
        let mut body = Vec::with_capacity(size);
        for record in &self.records {
            body.extend_from_slice(&record.json);
            body.push(b'\n');
        }
        body
    }
}

/// Whether another attempt can succeed without anyone changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Network trouble, timeouts, 408, 429, 5xx, an acknowledgement that did not come.
    Transient,
    /// The destination refused the batch (401, 403, 400, ...): it is retried all the same,
    /// since dropping it would lose events, and reported loudly until someone fixes it.
    Rejected,
    /// The destination confirmed every record of the batch except
    /// [`DeliveryError::rejected`], which it refused for good while taking the others (so
    /// the refusal is about those events, not about the destination's settings). The engine
    /// writes those to the sink's dead-letter topic, then commits past the batch.
    Permanent,
    /// The destination refused the whole request for what it holds (HTTP 400, 413, 422,
    /// Splunk's "invalid data format"), without saying which event: the engine delivers
    /// halves of the batch to find the events refused on their own, and dead-letters those
    /// once the destination has taken others (else it is retried like [`Self::Rejected`]).
    Invalid,
}

impl FailureClass {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Rejected => "rejected",
            FailureClass::Permanent => "permanent",
            FailureClass::Invalid => "invalid",
        }
    }
}

/// One event a destination refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The event's offset in the batch's partition.
    pub offset: i64,
    /// Short and stable, for the metric label and the `auditlog.dlq.kind` header
    /// (`mapper_parsing_exception`, ...).
    pub kind: String,
    /// The destination's own words, for humans.
    pub reason: String,
}

/// One failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Transient, rejected or permanent.
    pub class: FailureClass,
    /// What happened, for the log.
    pub message: String,
    /// With [`FailureClass::Permanent`]: the records refused for good (every other record
    /// of the batch was confirmed). With [`FailureClass::Invalid`]: every record of the
    /// refused request, each with the refusal's kind and reason (which of them caused it is
    /// not known yet). Empty otherwise.
    pub rejected: Vec<Rejection>,
}

impl DeliveryError {
    /// A transient failure.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: FailureClass::Transient,
            message: message.into(),
            rejected: Vec::new(),
        }
    }

    /// A refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            class: FailureClass::Rejected,
            message: message.into(),
            rejected: Vec::new(),
        }
    }

    /// The request for `batch` refused for what it holds; `kind` is short and stable
    /// (`http_422`, ...).
    pub fn invalid(batch: &Batch, kind: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let rejected = batch
            .records
            .iter()
            .map(|record| Rejection {
                offset: record.offset,
                kind: kind.to_owned(),
                reason: message.clone(),
            })
            .collect();
        Self {
            class: FailureClass::Invalid,
            message,
            rejected,
        }
    }

    /// Every record confirmed but `rejected`, which the destination refused for good.
    pub fn permanent(message: impl Into<String>, rejected: Vec<Rejection>) -> Self {
        Self {
            class: FailureClass::Permanent,
            message: message.into(),
            rejected,
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({})", self.message, self.class.as_str())
    }
}

/// A destination. `deliver` returns `Ok` only once the destination has confirmed the whole
/// batch; the engine commits the batch's offsets after that and never before.
#[async_trait]
pub trait Sink: Send + Sync + fmt::Debug {
    /// Delivers every record of `batch`. It may be called again with the same batch after an
    /// error, or after a crash with the same range (records may then differ only if the
    /// sink's filter or format changed in between).
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError>;

    /// Called once when the sink stops after its last confirmed batch (caught up, or asked
    /// to stop): the S3 archive writes the manifests of what it delivered since the last.
    async fn finish(&self) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// What a sink may need from the run besides its own settings.
#[derive(Debug, Clone)]
pub(crate) struct SinkContext {
    /// Kafka client settings (brokers, properties), without a group.
    pub(crate) kafka: rdkafka::ClientConfig,
    /// The ingester's signed checkpoint topic, whose checkpoints archive manifests carry.
    pub(crate) checkpoint_topic: Option<String>,
}

/// The sink for a configured destination.
pub(crate) fn build(destination: &Destination, context: &SinkContext) -> Box<dyn Sink> {
    match destination {
        Destination::Webhook(config) => Box::new(webhook::WebhookSink::new(config.clone())),
        Destination::SplunkHec(config) => Box::new(splunk_hec::SplunkHecSink::new(config.clone())),
        Destination::S3(config) => {
            let sink = s3::S3Sink::new(config.clone());
            Box::new(match &context.checkpoint_topic {
                Some(topic) => sink.with_checkpoints(checkpoints::CheckpointReader::new(
                    context.kafka.clone(),
                    topic.clone(),
                )),
                None => sink,
            })
        }
        Destination::OpenSearch(config) => {
            Box::new(opensearch::OpenSearchSink::new(config.clone()))
        }
    }
}
