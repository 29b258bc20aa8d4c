//! Signed checkpoints: the chain heads of the partitions this ingester owns, signed with
//! Ed25519 every interval, at revocation and at shutdown.
//!
//! ```text
//!  committed batches ─▶ heads (partition → last offset, digest) ─▶ sign ─┬▶ ingest_checkpoints
//!                                                                       └▶ audit-events-checkpoints
//! ```
//!
//! A head is only ever a batch whose offsets are committed, so everything a checkpoint
//! covers is in ClickHouse. Each envelope goes to ClickHouse and to Kafka, so an auditor has a
//! copy that someone with write access to ClickHouse alone cannot remove.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use auditlog_integrity::{ChainHead, CheckpointSigner, Hash};
use auditlog_producer::{RawRecord, RecordProducer};
use auditlog_store::{CHECKPOINTS_TABLE, CheckpointRow};
use clickhouse::Client;
use rdkafka::ClientConfig;
use sha2::{Digest, Sha256};

use crate::IngestError;
use crate::metrics as names;
use crate::retry::{Retrier, Stage};

/// How far back a starting ingester looks for checkpoints a crash left in ClickHouse alone:
/// far longer than any restart takes, and a small read (a few thousand envelopes).
const HEAL_WINDOW: Duration = Duration::from_secs(3600);

/// How an ingester signs checkpoints.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// The signing key.
    pub signer: Arc<CheckpointSigner>,
    /// How often the heads are signed when they moved.
    pub interval: Duration,
    /// The Kafka topic the envelopes also go to.
    pub topic: String,
}

impl std::fmt::Debug for CheckpointConfig {
    // The key is a secret: only its id is shown.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckpointConfig")
            .field("key_id", &self.signer.key_id())
            .field("interval", &self.interval)
            .field("topic", &self.topic)
            .finish()
    }
}

impl PartialEq for CheckpointConfig {
    fn eq(&self, other: &Self) -> bool {
        self.signer.key_id() == other.signer.key_id()
            && self.interval == other.interval
            && self.topic == other.topic
    }
}

/// The default interval between checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// The heads of the owned partitions, as batches commit.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    /// Finished batches not yet at the committed head: last offset → digest.
    finished: BTreeMap<i32, BTreeMap<i64, Hash>>,
    heads: BTreeMap<i32, (i64, Hash)>,
    /// Whether a head moved since the last checkpoint.
    changed: bool,
}

impl Heads {
    /// A batch finished (possibly ahead of the committed offset).
    pub(crate) fn finished(&mut self, partition: i32, last_offset: i64, digest: Hash) {
        self.finished
            .entry(partition)
            .or_default()
            .insert(last_offset, digest);
    }

    /// The partition's committed offset moved to `next_offset`: the batch ending just before
    /// it is the new head.
    pub(crate) fn committed(&mut self, partition: i32, next_offset: i64) {
        let Some(finished) = self.finished.get_mut(&partition) else {
            return;
        };
        if let Some(digest) = finished.get(&(next_offset - 1)).copied() {
            self.heads.insert(partition, (next_offset - 1, digest));
            self.changed = true;
        }
        finished.retain(|last_offset, _| *last_offset >= next_offset);
    }

    /// Takes the heads of `partitions` (revoked) out, returning them.
    pub(crate) fn remove(&mut self, topic: &str, partitions: &[i32]) -> Vec<ChainHead> {
        let mut removed = Vec::new();
        for partition in partitions {
            self.finished.remove(partition);
            if let Some((last_offset, digest)) = self.heads.remove(partition) {
                removed.push(head(topic, *partition, last_offset, digest));
            }
        }
        removed
    }

    /// Every head, if any moved since the last call (or always, with `force`).
    pub(crate) fn take_changed(&mut self, topic: &str, force: bool) -> Option<Vec<ChainHead>> {
        if !(self.changed || force) || self.heads.is_empty() {
            return None;
        }
        self.changed = false;
        Some(
            self.heads
                .iter()
                .map(|(partition, (last_offset, digest))| {
                    head(topic, *partition, *last_offset, *digest)
                })
                .collect(),
        )
    }
}

fn head(topic: &str, partition: i32, last_offset: i64, digest: Hash) -> ChainHead {
    ChainHead {
        topic: topic.to_owned(),
        partition,
        last_offset,
        digest,
    }
}

/// Signs heads and writes the envelopes to ClickHouse and Kafka.
#[derive(Clone)]
pub(crate) struct CheckpointPublisher {
    signer: Arc<CheckpointSigner>,
    client: Client,
    producer: RecordProducer,
    kafka_topic: String,
    audit_topic: String,
    retrier: Retrier,
}

impl CheckpointPublisher {
    pub(crate) fn new(
        config: &CheckpointConfig,
        kafka: &ClientConfig,
        client: Client,
        audit_topic: String,
        retrier: Retrier,
    ) -> Result<Self, IngestError> {
        let mut kafka = kafka.clone();
        kafka.set("enable.idempotence", "true").set("acks", "all");
        Ok(Self {
            signer: Arc::clone(&config.signer),
            client,
            producer: RecordProducer::new(&kafka)?,
            kafka_topic: config.topic.clone(),
            audit_topic,
            retrier,
        })
    }

    /// Signs `heads` now and writes the checkpoint to both places.
    pub(crate) async fn publish(&self, heads: Vec<ChainHead>) -> Result<(), IngestError> {
        let now = time::OffsetDateTime::now_utc();
        let signed_at = auditlog_event::unix_micros_saturating(now);
        let signed = self.signer.sign(signed_at, heads);
        let envelope = signed.envelope();
        let row = CheckpointRow {
            topic: self.audit_topic.clone(),
            key_id: self.signer.key_id().to_owned(),
            signed_at,
            body: envelope.body.clone(),
            signature: envelope.signature.clone(),
        };
        let token = hex::encode(Sha256::digest(envelope.body.as_bytes()));
        self.retrier
            .run(Stage::Checkpoint, || async {
                let mut insert = self
                    .client
                    .insert::<CheckpointRow>(CHECKPOINTS_TABLE)
                    .await?
                    .with_setting("async_insert", "0")
                    .with_setting("insert_deduplicate", "1")
                    .with_setting("insert_deduplication_token", format!("checkpoint:{token}"));
                insert.write(&row).await?;
                insert.end().await
            })
            .await?;
        self.send_to_kafka(&envelope).await?;
        metrics::counter!(names::CHECKPOINTS).increment(1);
        metrics::gauge!(names::LAST_CHECKPOINT).set(now.unix_timestamp() as f64);
        tracing::info!(
            key_id = self.signer.key_id(),
            heads = signed.checkpoint.heads.len(),
            "signed checkpoint written"
        );
        Ok(())
    }

    /// Copies to Kafka every checkpoint of the last [`HEAL_WINDOW`] that is in ClickHouse
    /// but not in Kafka, and returns how many it copied.
    ///
    /// [`publish`](Self::publish) writes ClickHouse first and Kafka second, so an ingester
    /// killed between the two leaves a checkpoint in ClickHouse alone, which `verify` rightly
    /// reports as missing from Kafka: from the outside it looks like one deleted there. The
    /// signed text is the same in both places, so copying it over is the write that the
    /// crash cut off, and nothing else: it cannot make a forged or altered checkpoint pass.
    /// Every ingester does this when it starts; a copy written twice is one checkpoint.
    pub(crate) async fn heal(&self, kafka: &ClientConfig) -> Result<usize, IngestError> {
        let since = time::OffsetDateTime::now_utc() - HEAL_WINDOW;
        let since_micros = auditlog_event::unix_micros_saturating(since);
        let sql = format!(
            "SELECT ?fields FROM {CHECKPOINTS_TABLE} WHERE topic = ? AND signed_at >= fromUnixTimestamp64Micro(?)"
        );
        let stored: Vec<CheckpointRow> = self
            .retrier
            .run(Stage::Checkpoint, || {
                self.client
                    .query(&sql)
                    .bind(&self.audit_topic)
                    .bind(since_micros)
                    .fetch_all()
            })
            .await?;
        if stored.is_empty() {
            return Ok(0);
        }
        let (kafka, topic) = (kafka.clone(), self.kafka_topic.clone());
        // A minute's margin: a Kafka timestamp is the send time, a little after signing.
        let since_millis = since_micros / 1000 - 60_000;
        let in_kafka: std::collections::HashSet<String> = tokio::task::spawn_blocking(move || {
            crate::dlq::replay::read_to_end(
                &kafka,
                &topic,
                "auditlog-checkpoint-heal",
                Some(since_millis),
                |message| {
                    use rdkafka::Message as _;
                    serde_json::from_slice::<auditlog_integrity::Envelope>(
                        message.payload().unwrap_or_default(),
                    )
                    .map(|envelope| envelope.body)
                    .unwrap_or_default()
                },
            )
        })
        .await
        .map_err(|error| IngestError::Pipeline(format!("checkpoint heal: {error}")))??
        .into_iter()
        .collect();
        let mut copied = 0;
        for row in stored {
            if in_kafka.contains(&row.body) {
                continue;
            }
            let envelope = auditlog_integrity::Envelope {
                body: row.body,
                signature: row.signature,
            };
            self.send_to_kafka(&envelope).await?;
            copied += 1;
        }
        Ok(copied)
    }

    /// [`heal`](Self::heal), logged: a failure leaves the next start to try again.
    pub(crate) async fn heal_logged(&self, kafka: &ClientConfig) {
        match self.heal(kafka).await {
            Ok(0) => {}
            Ok(copied) => tracing::info!(
                copied,
                "checkpoints found in ClickHouse but not in Kafka (an earlier ingester stopped between the two writes) copied to Kafka"
            ),
            Err(error) => {
                tracing::warn!(%error, "checking recent checkpoints against Kafka failed")
            }
        }
    }

    /// Sends one envelope to the checkpoint topic, retried under the pipeline's policy.
    async fn send_to_kafka(
        &self,
        envelope: &auditlog_integrity::Envelope,
    ) -> Result<(), IngestError> {
        let value = serde_json::to_vec(envelope).unwrap_or_default();
        let key = self.signer.key_id().as_bytes();
        self.retrier
            .run(Stage::CheckpointPublish, || {
                let record = RawRecord {
                    topic: &self.kafka_topic,
                    key: Some(key),
                    payload: Some(value.as_slice()),
                    headers: None,
                };
                let send = self.producer.send(record, Duration::from_secs(30));
                async move { send.await.map(|_| ()) }
            })
            .await
    }

    /// [`publish`](Self::publish), logging a failure instead of returning it: a checkpoint
    /// that could not be written is covered by the next one.
    pub(crate) async fn publish_logged(&self, heads: Vec<ChainHead>) {
        if let Err(error) = self.publish(heads).await {
            metrics::counter!(names::CHECKPOINT_FAILURES).increment(1);
            tracing::warn!(%error, "signed checkpoint not written; the next one covers its heads");
        }
    }
}

/// The checkpoint envelopes in Kafka `topic`, oldest first, each as produced (JSON), for
/// `auditlog verify --checkpoints kafka`.
pub fn read_checkpoint_topic(
    kafka: &ClientConfig,
    topic: &str,
) -> Result<Vec<Vec<u8>>, IngestError> {
    use rdkafka::Message as _;
    crate::dlq::replay::read_to_end(kafka, topic, "auditlog-verifier", None, |message| {
        message.payload().unwrap_or_default().to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_the_batch_just_before_the_committed_offset() {
        let mut heads = Heads::default();
        heads.finished(0, 9, [1; 32]);
        heads.finished(0, 29, [3; 32]);
        assert_eq!(heads.take_changed("t", false), None);
        heads.committed(0, 10);
        let taken = heads.take_changed("t", false).unwrap();
        assert_eq!((taken[0].last_offset, taken[0].digest), (9, [1; 32]));
        assert_eq!(heads.take_changed("t", false), None, "nothing moved since");
        assert_eq!(heads.take_changed("t", true).unwrap().len(), 1);

        heads.finished(0, 19, [2; 32]);
        heads.committed(0, 30);
        heads.finished(1, 4, [4; 32]);
        heads.committed(1, 5);
        let revoked = heads.remove("t", &[0]);
        assert_eq!((revoked[0].last_offset, revoked[0].digest), (29, [3; 32]));
        let left = heads.take_changed("t", false).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].partition, 1);
    }
}
