//! The dead-letter topic: poison messages with the reason they could not be ingested.
//!
//! A dead letter is the original key and payload, unchanged, plus headers that say why and
//! where it came from. The source offset is committed only after the dead-letter produce is
//! acknowledged, so a poison message is never lost between the two topics. After a crash it
//! may be dead-lettered twice; `inspect` and `replay` collapse copies by source position.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::IngestError;
use crate::batch::Poison;
use crate::sink::RetryPolicy;

/// Header: the specific reason, for humans.
pub const HEADER_REASON: &str = "auditlog.dlq.reason";
/// Header: the class of failure (`decode`, `unknown_schema`, `invalid_event`, ...).
pub const HEADER_KIND: &str = "auditlog.dlq.kind";
/// Header: the topic the message was consumed from.
pub const HEADER_SOURCE_TOPIC: &str = "auditlog.dlq.source.topic";
/// Header: its partition there.
pub const HEADER_SOURCE_PARTITION: &str = "auditlog.dlq.source.partition";
/// Header: its offset there.
pub const HEADER_SOURCE_OFFSET: &str = "auditlog.dlq.source.offset";
/// Header: its Kafka timestamp there (ms since the epoch), when it had one.
pub const HEADER_SOURCE_TIMESTAMP: &str = "auditlog.dlq.source.timestamp_ms";
/// Header: when it was dead-lettered (RFC 3339, UTC).
pub const HEADER_DEAD_LETTERED_AT: &str = "auditlog.dlq.time";

/// How many times a dead-letter produce is retried before the ingester stops.
const MAX_DEAD_LETTER_ATTEMPTS: u32 = 10;

/// Sends poison messages to the dead-letter topic.
#[derive(Clone)]
pub(crate) struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for DeadLetterProducer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DeadLetterProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetterProducer {
    pub(crate) fn new(
        client_config: &ClientConfig,
        topic: String,
        retry: RetryPolicy,
    ) -> Result<Self, IngestError> {
        let producer: FutureProducer = client_config
            .clone()
            // Correctness settings, not options: no duplicates from producer retries, and
            // an acknowledgement means every in-sync replica has the dead letter.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
        Ok(Self {
            producer,
            topic,
            retry,
        })
    }

    /// Sends every poison message of a batch and waits until all are acknowledged.
    pub(crate) async fn send_all(
        &self,
        source_topic: &str,
        partition: i32,
        poison: &[Poison],
    ) -> Result<(), IngestError> {
        let sends = poison
            .iter()
            .map(|message| self.send_one(source_topic, partition, message));
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(())
    }

    async fn send_one(
        &self,
        source_topic: &str,
        partition: i32,
        poison: &Poison,
    ) -> Result<(), IngestError> {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let partition_text = partition.to_string();
        let offset_text = poison.offset.to_string();
        let timestamp_text = poison.timestamp_millis.map(|millis| millis.to_string());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut headers = OwnedHeaders::new_with_capacity(7)
                .insert(header(HEADER_REASON, &poison.reason))
                .insert(header(HEADER_KIND, poison.kind))
                .insert(header(HEADER_SOURCE_TOPIC, source_topic))
                .insert(header(HEADER_SOURCE_PARTITION, &partition_text))
                .insert(header(HEADER_SOURCE_OFFSET, &offset_text))
                .insert(header(HEADER_DEAD_LETTERED_AT, &now));
            if let Some(timestamp) = &timestamp_text {
                headers = headers.insert(header(HEADER_SOURCE_TIMESTAMP, timestamp));
            }
            let mut record = FutureRecord::to(&self.topic)
                .payload(&poison.payload)
                .headers(headers);
            if let Some(key) = &poison.key {
                record = record.key(key);
            }
            match self.producer.send(record, Duration::from_secs(30)).await {
                Ok(_) => {
                    metrics::counter!(crate::metrics::DEAD_LETTERED, "kind" => poison.kind)
                        .increment(1);
                    return Ok(());
                }
                Err((error, _)) if attempt < MAX_DEAD_LETTER_ATTEMPTS => {
                    tracing::warn!(%error, attempt, offset = poison.offset, "dead-letter produce failed, retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                }
                Err((error, _)) => {
                    return Err(IngestError::DeadLetter {
                        topic: source_topic.to_owned(),
                        partition,
                        offset: poison.offset,
                        message: error.to_string(),
                    });
                }
            }
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// One message read back from the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Its partition in the dead-letter topic.
    pub dlq_partition: i32,
    /// Its offset in the dead-letter topic.
    pub dlq_offset: i64,
    /// Where it was consumed from.
    pub source_topic: String,
    /// Partition there.
    pub source_partition: i32,
    /// Offset there.
    pub source_offset: i64,
    /// The failure class.
    pub kind: String,
    /// The specific reason.
    pub reason: String,
    /// When it was dead-lettered.
    pub dead_lettered_at: String,
    /// The original key.
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// The original payload.
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// Payload size in bytes.
    pub payload_bytes: usize,
}

/// Which dead letters to act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only letters whose reason or kind contains this text.
    pub reason_contains: Option<String>,
    /// Only letters whose source offset is at least this.
    pub min_source_offset: Option<i64>,
    /// Only letters whose source offset is at most this.
    pub max_source_offset: Option<i64>,
    /// Only letters from this source partition.
    pub source_partition: Option<i32>,
}

impl DeadLetterFilter {
    /// Whether a letter passes the filter.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.reason_contains.as_ref().is_none_or(|text| {
            letter.reason.contains(text.as_str()) || letter.kind.contains(text.as_str())
        }) && self
            .min_source_offset
            .is_none_or(|min| letter.source_offset >= min)
            && self
                .max_source_offset
                .is_none_or(|max| letter.source_offset <= max)
            && self
                .source_partition
                .is_none_or(|partition| letter.source_partition == partition)
    }
}

/// Reads every dead letter currently in `topic` (up to each partition's high watermark),
/// without joining a consumer group, and returns those that pass `filter`, one per source
/// position (copies from a crash between produce and commit are collapsed).
pub fn read_dead_letters(
    client_config: &ClientConfig,
    topic: &str,
    filter: &DeadLetterFilter,
) -> Result<Vec<DeadLetter>, IngestError> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = client_config
        .clone()
        .set("group.id", "auditlog-dlq-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for topic_metadata in metadata.topics() {
        for partition in topic_metadata.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
            if high > low {
                assignment.add_partition_offset(topic, partition.id(), Offset::Offset(low))?;
                ends.insert(partition.id(), high);
            }
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&assignment)?;
    let mut letters: BTreeMap<(String, i32, i64), DeadLetter> = BTreeMap::new();
    let mut remaining = ends.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !remaining.is_empty() && std::time::Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = result?;
        let partition = message.partition();
        if let Some(end) = remaining.get(&partition)
            && message.offset() + 1 >= *end
        {
            remaining.remove(&partition);
        }
        let letter = to_dead_letter(&message);
        if filter.matches(&letter) {
            letters
                .entry((
                    letter.source_topic.clone(),
                    letter.source_partition,
                    letter.source_offset,
                ))
                .or_insert(letter);
        }
    }
    Ok(letters.into_values().collect())
}

fn to_dead_letter(message: &impl Message) -> DeadLetter {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header
                .value
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            fields.insert(header.key, value);
        }
    }
    let number = |key: &str| fields.get(key).and_then(|text| text.parse::<i64>().ok());
    let payload = message.payload().unwrap_or_default().to_vec();
    DeadLetter {
        dlq_partition: message.partition(),
        dlq_offset: message.offset(),
        source_topic: fields.get(HEADER_SOURCE_TOPIC).cloned().unwrap_or_default(),
        source_partition: number(HEADER_SOURCE_PARTITION)
            .and_then(|partition| i32::try_from(partition).ok())
            .unwrap_or(-1),
        source_offset: number(HEADER_SOURCE_OFFSET).unwrap_or(-1),
        kind: fields.get(HEADER_KIND).cloned().unwrap_or_default(),
        reason: fields.get(HEADER_REASON).cloned().unwrap_or_default(),
        dead_lettered_at: fields
            .get(HEADER_DEAD_LETTERED_AT)
            .cloned()
            .unwrap_or_default(),
        key: message.key().map(<[u8]>::to_vec),
        payload_bytes: payload.len(),
        payload,
    }
}

/// Sends dead letters back to `topic` with their original key and payload (after a fix,
/// e.g. a newer ingester that reads their schema). Returns how many were sent.
pub async fn replay_dead_letters(
    client_config: &ClientConfig,
    topic: &str,
    letters: &[DeadLetter],
) -> Result<usize, IngestError> {
    let producer: FutureProducer = client_config
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let sends = letters.iter().map(|letter| {
        let producer = producer.clone();
        async move {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).payload(letter.payload.as_slice());
            if let Some(key) = &letter.key {
                record = record.key(key.as_slice());
            }
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(error, _)| IngestError::Kafka(error))
        }
    });
    let mut num_sent = 0;
    for result in futures::future::join_all(sends).await {
        result?;
        num_sent += 1;
    }
    Ok(num_sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(reason: &str, source_offset: i64) -> DeadLetter {
        DeadLetter {
            dlq_partition: 0,
            dlq_offset: 0,
            source_topic: "audit-events".into(),
            source_partition: 1,
            source_offset,
            kind: "decode".into(),
            reason: reason.into(),
            dead_lettered_at: String::new(),
            key: None,
            payload: Vec::new(),
            payload_bytes: 0,
        }
    }

    #[test]
    fn filter_by_reason_and_offset_range() {
        let filter = DeadLetterFilter {
            reason_contains: Some("fingerprint".into()),
            min_source_offset: Some(10),
            max_source_offset: Some(20),
            source_partition: None,
        };
        assert!(filter.matches(&letter("unknown schema fingerprint 0x12", 10)));
        assert!(!filter.matches(&letter("unknown schema fingerprint 0x12", 21)));
        assert!(!filter.matches(&letter("truncated datum", 15)));
        assert!(DeadLetterFilter::default().matches(&letter("anything", -1)));
    }
}
