//! The ingester's signed checkpoints, read from their Kafka topic, for the S3 archive's
//! manifests: each manifest carries the checkpoint that covers its offsets.
//!
//! ```text
//!  ingester ──signs heads──▶ audit-events-checkpoints ──read to its end──▶ CheckpointReader
//!                                                                             │ covering(topic, p, last)
//!  manifest { ..., checkpoint: { body, signature, signed_through } } ◀────────┘
//! ```
//!
//! A checkpoint's head for a partition names the last offset the ingester had committed and
//! signed; the one carried is the oldest whose head reaches the manifest's last offset, or,
//! while the ingester is behind the stream, the newest there is (`signed_through` then says
//! how far it reaches; a later manifest's checkpoint covers the rest).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_integrity::Envelope;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::manifest::ManifestCheckpoint;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a checkpoint topic incrementally and remembers every head seen.
#[derive(Clone)]
pub(crate) struct CheckpointReader {
    kafka: ClientConfig,
    topic: String,
    state: Arc<Mutex<ReaderState>>,
}

impl std::fmt::Debug for CheckpointReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckpointReader")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct ReaderState {
    consumer: Option<BaseConsumer>,
    /// The next offset to read, per partition of the checkpoint topic.
    next: HashMap<i32, i64>,
    /// (topic, partition) → signed last offset → the first envelope that signed it.
    heads: HashMap<(String, i32), BTreeMap<i64, Envelope>>,
}

impl CheckpointReader {
    pub(crate) fn new(kafka: ClientConfig, topic: String) -> Self {
        Self {
            kafka,
            topic,
            state: Arc::new(Mutex::new(ReaderState::default())),
        }
    }

    /// The checkpoint to carry for `topic`/`partition` up to `last_offset`; `None` when no
    /// checkpoint names the partition (no signing ingester, or none yet).
    pub(crate) async fn covering(
        &self,
        topic: &str,
        partition: i32,
        last_offset: i64,
    ) -> Option<ManifestCheckpoint> {
        let reader = self.clone();
        let slot = (topic.to_owned(), partition);
        tokio::task::spawn_blocking(move || {
            let mut state = reader.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = reader.read_to_end(&mut state) {
                tracing::warn!(topic = %reader.topic, %error, "reading signed checkpoints failed; the manifest carries the newest one read");
            }
            let heads = state.heads.get(&slot)?;
            let (signed_through, envelope) = heads
                .range(last_offset..)
                .next()
                .or_else(|| heads.iter().next_back())?;
            Some(ManifestCheckpoint {
                body: envelope.body.clone(),
                signature: envelope.signature.clone(),
                signed_through: *signed_through,
            })
        })
        .await
        .ok()
        .flatten()
    }

    fn read_to_end(&self, state: &mut ReaderState) -> Result<(), rdkafka::error::KafkaError> {
        if state.consumer.is_none() {
            // librdkafka wants a group even for assigned partitions; nothing is committed.
            let consumer: BaseConsumer = self
                .kafka
                .clone()
                .set("group.id", "auditlog-stream-checkpoint-reader")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                // A broker answers one connection's requests in order, so a fetch waiting
                // for data holds the next read's ListOffsets (below) behind it: with the
                // default 500 ms, each manifest of a closing stream waited that long.
                .set("fetch.wait.max.ms", "20")
                .create()?;
            let metadata = consumer.fetch_metadata(Some(&self.topic), KAFKA_TIMEOUT)?;
            let Some(found) = metadata
                .topics()
                .iter()
                .find(|found| found.name() == self.topic && found.error().is_none())
            else {
                // No checkpoint topic: nothing signs, nothing to carry; asked again next time.
                return Ok(());
            };
            let mut assignment = TopicPartitionList::new();
            for partition in found.partitions() {
                assignment.add_partition_offset(&self.topic, partition.id(), Offset::Beginning)?;
                state.next.insert(partition.id(), 0);
            }
            consumer.assign(&assignment)?;
            consumer.pause(&assignment)?;
            state.consumer = Some(consumer);
        }
        let consumer = state.consumer.as_ref().expect("created above");
        let mut ends = HashMap::new();
        for partition in state.next.keys() {
            let (_, high) = consumer.fetch_watermarks(&self.topic, *partition, KAFKA_TIMEOUT)?;
            ends.insert(*partition, high);
        }
        let behind = |next: &HashMap<i32, i64>| {
            ends.iter()
                .any(|(partition, high)| next.get(partition).is_some_and(|next| next < high))
        };
        if !behind(&state.next) {
            return Ok(());
        }
        // Fetching only while there is something to read: between manifests (a minute apart)
        // the reader costs nothing, and no fetch sits in front of the next ListOffsets.
        let assignment = consumer.assignment()?;
        consumer.resume(&assignment)?;
        let deadline = Instant::now() + KAFKA_TIMEOUT;
        let mut read = Vec::new();
        while behind(&state.next) && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message?;
            state.next.insert(message.partition(), message.offset() + 1);
            if let Some(payload) = message.payload() {
                read.push(payload.to_vec());
            }
        }
        consumer.pause(&assignment)?;
        for payload in read {
            let Ok(envelope) = serde_json::from_slice::<Envelope>(&payload) else {
                continue;
            };
            let Ok(signed) = envelope.open() else {
                continue;
            };
            for head in &signed.checkpoint.heads {
                state
                    .heads
                    .entry((head.topic.clone(), head.partition))
                    .or_default()
                    .entry(head.last_offset)
                    .or_insert_with(|| envelope.clone());
            }
        }
        Ok(())
    }
}
