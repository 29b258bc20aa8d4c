//! The producer on the hot path: a batch's write task sends its poison messages to the
//! dead-letter topic through it, and the batch's offsets are committed only once every letter
//! is acknowledged.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auditlog_producer::{RawRecord, RecordProducer};
use rdkafka::ClientConfig;
use rdkafka::message::OwnedHeaders;

use crate::IngestError;
use crate::dlq::letter::headers::{
    HEADER_DEAD_LETTERED_AT, HEADER_KIND, HEADER_REASON, HEADER_REPLAYED_OFFSET,
    HEADER_REPLAYED_PARTITION, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TIMESTAMP, HEADER_SOURCE_TOPIC,
};
use crate::dlq::letter::{Poison, header};
use crate::retry::{DeadLetterFailure, Retrier, Stage};

/// Sends poison messages to the dead-letter topic.
///
/// The producer is made on the first poison message, not at start: most ingesters never see
/// poison, so most never connect for it.
#[derive(Clone)]
pub(crate) struct DeadLetterProducer {
    config: ClientConfig,
    producer: Arc<OnceLock<RecordProducer>>,
    topic: String,
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
    /// Checks the configuration at once (by making a producer and dropping it), so that a
    /// bad property fails the start rather than the first poison message.
    pub(crate) fn new(client_config: &ClientConfig, topic: String) -> Result<Self, IngestError> {
        let mut config = client_config.clone();
        // Correctness settings, not options: no duplicates from producer retries, and an
        // acknowledgement means every in-sync replica has the dead letter.
        config.set("enable.idempotence", "true").set("acks", "all");
        drop(RecordProducer::new(&config)?);
        Ok(Self {
            config,
            producer: Arc::default(),
            topic,
        })
    }

    /// The producer, made on first use.
    fn producer(&self) -> Result<&RecordProducer, IngestError> {
        if let Some(producer) = self.producer.get() {
            return Ok(producer);
        }
        let producer = RecordProducer::new(&self.config)?;
        // Two batches racing here: one producer wins, the other is dropped unused.
        Ok(self.producer.get_or_init(|| producer))
    }

    /// Sends every poison message of a batch and waits until all are acknowledged; a
    /// replayed message whose letter still records it is counted instead of sent again.
    pub(crate) async fn send_all(
        &self,
        retrier: &Retrier,
        source_topic: &str,
        partition: i32,
        poison: &[Poison],
    ) -> Result<(), IngestError> {
        let letters_present = self.letter_ranges(poison).await;
        let sends = poison.iter().map(|message| {
            self.send_one(retrier, source_topic, partition, message, &letters_present)
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(())
    }

    async fn send_one(
        &self,
        retrier: &Retrier,
        source_topic: &str,
        partition: i32,
        poison: &Poison,
        letters_present: &BTreeMap<i32, (i64, i64)>,
    ) -> Result<(), IngestError> {
        if let Some(origin) = &poison.replay
            && origin.still_recorded(&poison.reason, letters_present)
        {
            metrics::counter!(crate::metrics::REPLAYED_STILL_POISON, "kind" => poison.kind)
                .increment(1);
            tracing::info!(
                partition,
                offset = poison.offset,
                origin_partition = origin.partition,
                origin_offset = origin.offset,
                reason = %poison.reason,
                "replayed message is still poison; its dead letter already records it"
            );
            return Ok(());
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        // A replayed message keeps its original position, so its letters collapse with the
        // first one by source position, however often it is replayed.
        let (source_topic, source_partition, source_offset, source_timestamp) = match &poison.replay
        {
            Some(origin) => (
                origin.topic.as_str(),
                origin.partition,
                origin.offset,
                origin.timestamp_millis,
            ),
            None => (
                source_topic,
                partition,
                poison.offset,
                poison.timestamp_millis,
            ),
        };
        let partition_text = source_partition.to_string();
        let offset_text = source_offset.to_string();
        let timestamp_text = source_timestamp.map(|millis| millis.to_string());
        let replayed_partition_text = partition.to_string();
        let replayed_offset_text = poison.offset.to_string();
        let producer = self.producer()?;
        retrier
            .run(Stage::DeadLetter, || {
                let mut headers = OwnedHeaders::new_with_capacity(9)
                    .insert(header(HEADER_REASON, &poison.reason))
                    .insert(header(HEADER_KIND, poison.kind))
                    .insert(header(HEADER_SOURCE_TOPIC, source_topic))
                    .insert(header(HEADER_SOURCE_PARTITION, &partition_text))
                    .insert(header(HEADER_SOURCE_OFFSET, &offset_text))
                    .insert(header(HEADER_DEAD_LETTERED_AT, &now));
                if let Some(timestamp) = &timestamp_text {
                    headers = headers.insert(header(HEADER_SOURCE_TIMESTAMP, timestamp));
                }
                if poison.replay.is_some() {
                    headers = headers
                        .insert(header(HEADER_REPLAYED_PARTITION, &replayed_partition_text))
                        .insert(header(HEADER_REPLAYED_OFFSET, &replayed_offset_text));
                }
                let record = RawRecord {
                    topic: &self.topic,
                    key: poison.key.as_deref(),
                    payload: poison.payload.as_deref(),
                    headers: Some(headers),
                };
                let send = producer.send(record, Duration::from_secs(30));
                async move {
                    send.await.map_err(|error| DeadLetterFailure {
                        error,
                        topic: source_topic.to_owned(),
                        partition,
                        offset: poison.offset,
                    })
                }
            })
            .await?;
        metrics::counter!(crate::metrics::DEAD_LETTERED, "kind" => poison.kind).increment(1);
        Ok(())
    }

    /// The offset range (low, high watermark) of each dead-letter partition that holds the
    /// letter of a replayed message in `poison`, one broker query per partition. A partition
    /// the broker cannot answer for is left out, so its messages get a new letter.
    async fn letter_ranges(&self, poison: &[Poison]) -> BTreeMap<i32, (i64, i64)> {
        let partitions: std::collections::BTreeSet<i32> = poison
            .iter()
            .filter_map(|message| message.replay.as_ref()?.letter)
            .map(|(letter_partition, _)| letter_partition)
            .collect();
        if partitions.is_empty() {
            return BTreeMap::new();
        }
        let Ok(producer) = self.producer().cloned() else {
            return BTreeMap::new();
        };
        let topic = self.topic.clone();
        let ranges = tokio::task::spawn_blocking(move || {
            let mut ranges = BTreeMap::new();
            for partition in partitions {
                match producer.fetch_watermarks(&topic, partition, Duration::from_secs(10)) {
                    Ok(range) => {
                        ranges.insert(partition, range);
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        partition,
                        "cannot check replayed letters; dead-lettering them again"
                    ),
                }
            }
            ranges
        })
        .await;
        ranges.unwrap_or_default()
    }
}
