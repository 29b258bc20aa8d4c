//! The dead-letter topic: poison messages with the reason they could not be ingested.
//!
//! A dead letter is the original key and value, unchanged (a null value stays null), plus
//! headers that say why and where it came from. The source offset is committed only after the
//! dead-letter produce is acknowledged, so a poison message is never lost between the two
//! topics. After a crash it may be dead-lettered twice; `inspect` and `replay` collapse copies
//! by source position.
//!
//! Replay converges: a replayed message carries its original position and the letter it was
//! sent from (`auditlog.replay.*` headers). If it is still poison for the same reason while
//! that letter is still in the dead-letter topic, the letter already records it and no new
//! one is written; otherwise the new letter keeps the original position, so it collapses with
//! the old one. Replayed messages are not counted toward the poison flood stop.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::IngestError;
use crate::batch::Poison;
use crate::retry::{DeadLetterFailure, Retrier, Stage};

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
/// Header of a letter for a replayed message: the partition the replayed copy had in the
/// main topic (its source position headers keep the original one).
pub const HEADER_REPLAYED_PARTITION: &str = "auditlog.dlq.replayed.partition";
/// Header of a letter for a replayed message: the offset the replayed copy had.
pub const HEADER_REPLAYED_OFFSET: &str = "auditlog.dlq.replayed.offset";

/// Header of a replayed message: the topic of its original position.
pub const HEADER_REPLAY_ORIGIN_TOPIC: &str = "auditlog.replay.origin.topic";
/// Header of a replayed message: the partition of its original position.
pub const HEADER_REPLAY_ORIGIN_PARTITION: &str = "auditlog.replay.origin.partition";
/// Header of a replayed message: the offset of its original position.
pub const HEADER_REPLAY_ORIGIN_OFFSET: &str = "auditlog.replay.origin.offset";
/// Header of a replayed message: the original Kafka timestamp (ms), when it had one.
pub const HEADER_REPLAY_ORIGIN_TIMESTAMP: &str = "auditlog.replay.origin.timestamp_ms";
/// Header of a replayed message: the dead-letter partition of the letter it was sent from.
pub const HEADER_REPLAY_LETTER_PARTITION: &str = "auditlog.replay.letter.partition";
/// Header of a replayed message: the dead-letter offset of the letter it was sent from.
pub const HEADER_REPLAY_LETTER_OFFSET: &str = "auditlog.replay.letter.offset";
/// Header of a replayed message: the reason recorded in that letter.
pub const HEADER_REPLAY_REASON: &str = "auditlog.replay.reason";

/// Sends poison messages to the dead-letter topic.
///
/// The producer is made on the first poison message, not at start: a librdkafka producer
/// keeps a polling thread awake, which was most of an idle ingester's CPU, and most
/// ingesters never see poison.
#[derive(Clone)]
pub(crate) struct DeadLetterProducer {
    config: ClientConfig,
    producer: Arc<OnceLock<FutureProducer>>,
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
        drop(config.create::<FutureProducer>()?);
        Ok(Self {
            config,
            producer: Arc::default(),
            topic,
        })
    }

    /// The producer, made on first use.
    fn producer(&self) -> Result<&FutureProducer, IngestError> {
        if let Some(producer) = self.producer.get() {
            return Ok(producer);
        }
        let producer = self.config.create::<FutureProducer>()?;
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
                let mut record: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&self.topic).headers(headers);
                if let Some(payload) = &poison.payload {
                    record = record.payload(payload.as_slice());
                }
                if let Some(key) = &poison.key {
                    record = record.key(key.as_slice());
                }
                let send = producer.send(record, Duration::from_secs(30));
                async move {
                    send.await.map_err(|(error, _)| DeadLetterFailure {
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
                match producer
                    .client()
                    .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                {
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

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// Where a replayed message first came from, read from its `auditlog.replay.*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayOrigin {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp_millis: Option<i64>,
    /// The letter it was sent from: (dead-letter partition, offset).
    pub(crate) letter: Option<(i32, i64)>,
    /// The reason that letter records.
    pub(crate) reason: Option<String>,
}

impl ReplayOrigin {
    /// The origin of a message that `auditlog dlq replay` sent; `None` for any other message
    /// (no complete original position).
    pub(crate) fn from_headers(headers: Option<&impl Headers>) -> Option<Self> {
        let fields = header_fields(headers);
        let number = |key: &str| fields.get(key).and_then(|text| text.parse::<i64>().ok());
        let partition = |key: &str| number(key).and_then(|value| i32::try_from(value).ok());
        Some(Self {
            topic: fields.get(HEADER_REPLAY_ORIGIN_TOPIC)?.clone(),
            partition: partition(HEADER_REPLAY_ORIGIN_PARTITION)?,
            offset: number(HEADER_REPLAY_ORIGIN_OFFSET)?,
            timestamp_millis: number(HEADER_REPLAY_ORIGIN_TIMESTAMP),
            letter: partition(HEADER_REPLAY_LETTER_PARTITION)
                .zip(number(HEADER_REPLAY_LETTER_OFFSET)),
            reason: fields.get(HEADER_REPLAY_REASON).cloned(),
        })
    }

    /// Whether the letter this message was replayed from still records its failure: the
    /// same reason, and the letter within its partition's `letters_present` range (not yet
    /// deleted by retention). When in doubt (no letter named, the range unknown), no: a
    /// second letter is collapsed later, a lost one is not.
    pub(crate) fn still_recorded(
        &self,
        reason: &str,
        letters_present: &BTreeMap<i32, (i64, i64)>,
    ) -> bool {
        let (Some((partition, offset)), Some(letter_reason)) = (self.letter, &self.reason) else {
            return false;
        };
        letter_reason == reason
            && letters_present
                .get(&partition)
                .is_some_and(|(low, high)| (*low..*high).contains(&offset))
    }
}

/// Header values as text by key (the last one wins); a header without a value reads as "".
fn header_fields(headers: Option<&impl Headers>) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    if let Some(headers) = headers {
        for header in headers.iter() {
            let value = header
                .value
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            fields.insert(header.key.to_owned(), value);
        }
    }
    fields
}

/// One message read back from the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Its partition in the dead-letter topic.
    pub dlq_partition: i32,
    /// Its offset in the dead-letter topic.
    pub dlq_offset: i64,
    /// Where it was consumed from (for a replayed message: where it was first consumed).
    pub source_topic: String,
    /// Partition there (-1 when the letter does not say).
    pub source_partition: i32,
    /// Offset there (-1 when the letter does not say).
    pub source_offset: i64,
    /// Its Kafka timestamp there (ms since the epoch), when it had one.
    pub source_timestamp_ms: Option<i64>,
    /// The failure class.
    pub kind: String,
    /// The specific reason.
    pub reason: String,
    /// When it was dead-lettered.
    pub dead_lettered_at: String,
    /// For a replayed message dead-lettered again: its (partition, offset) as replayed.
    pub replayed_at: Option<(i32, i64)>,
    /// The original key.
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// The original value; `None` for a null value (a tombstone).
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    /// Value size in bytes (0 for a null value).
    pub payload_bytes: usize,
    /// Whether the value is null.
    pub payload_null: bool,
}

impl DeadLetter {
    /// Whether the letter names its source position (every letter an ingester writes does).
    pub fn has_source_position(&self) -> bool {
        !self.source_topic.is_empty() && self.source_partition >= 0 && self.source_offset >= 0
    }
}

/// Which dead letters to act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only letters whose reason or kind contains this text.
    pub reason_contains: Option<String>,
    /// Only letters of exactly this kind (`decode`, `unknown_schema`, `invalid_event`).
    pub kind: Option<String>,
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
        }) && self.kind.as_ref().is_none_or(|kind| &letter.kind == kind)
            && self
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

/// Why a letter read from the dead-letter topic is not among those to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// It does not pass the filter.
    NotMatching,
    /// A newer letter for the same source position passes it (a copy from a crash, or a
    /// replay that failed again for another reason): that one stands for the position.
    Superseded,
    /// It names no source position, so a replay could not be recognised if it failed again.
    NoSourcePosition,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::NotMatching => "not matching the filters",
            Self::Superseded => "superseded by a newer letter for the same source position",
            Self::NoSourcePosition => "no source position (not written by an ingester)",
        })
    }
}

/// The letters of a dead-letter topic that pass a filter, one per source position, and how
/// many of the others were skipped and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterSelection {
    /// The letters to act on, by source position (letters without one last, by dead-letter
    /// position).
    pub letters: Vec<DeadLetter>,
    /// The letters left out, each with why.
    pub skipped: Vec<(SkipReason, DeadLetter)>,
}

impl DeadLetterSelection {
    /// Selects from `all` (in any order): the letters passing `filter`, keeping for each
    /// source position only the newest letter. Letters without a source position are each
    /// their own.
    pub fn select(all: Vec<DeadLetter>, filter: &DeadLetterFilter) -> Self {
        let mut selection = Self::default();
        let mut by_position: BTreeMap<(String, i32, i64), DeadLetter> = BTreeMap::new();
        let mut unpositioned = Vec::new();
        for letter in all {
            if !filter.matches(&letter) {
                selection.skipped.push((SkipReason::NotMatching, letter));
            } else if !letter.has_source_position() {
                unpositioned.push(letter);
            } else {
                let position = (
                    letter.source_topic.clone(),
                    letter.source_partition,
                    letter.source_offset,
                );
                match by_position.remove(&position) {
                    Some(known) if newness(&known) > newness(&letter) => {
                        selection.skipped.push((SkipReason::Superseded, letter));
                        by_position.insert(position, known);
                    }
                    Some(known) => {
                        selection.skipped.push((SkipReason::Superseded, known));
                        by_position.insert(position, letter);
                    }
                    None => {
                        by_position.insert(position, letter);
                    }
                }
            }
        }
        unpositioned.sort_by_key(|letter| (letter.dlq_partition, letter.dlq_offset));
        selection.letters = by_position.into_values().chain(unpositioned).collect();
        selection
    }

    /// The selection narrowed to what can be replayed: letters without a source position move
    /// to the skipped ones.
    pub fn replayable(mut self) -> Self {
        let (letters, unpositioned): (Vec<_>, Vec<_>) = self
            .letters
            .into_iter()
            .partition(DeadLetter::has_source_position);
        self.letters = letters;
        self.skipped.extend(
            unpositioned
                .into_iter()
                .map(|letter| (SkipReason::NoSourcePosition, letter)),
        );
        self
    }

    /// How many letters were skipped for each reason.
    pub fn skipped_counts(&self) -> BTreeMap<SkipReason, usize> {
        let mut counts = BTreeMap::new();
        for (reason, _) in &self.skipped {
            *counts.entry(*reason).or_insert(0) += 1;
        }
        counts
    }
}

/// Orders letters of one source position: later dead-lettering wins; within one dead-letter
/// partition a later offset is later, whatever the clocks said.
fn newness(letter: &DeadLetter) -> (Option<time::OffsetDateTime>, i32, i64) {
    let time = time::OffsetDateTime::parse(
        &letter.dead_lettered_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok();
    (time, letter.dlq_partition, letter.dlq_offset)
}

/// Reads every dead letter currently in `topic` (up to each partition's high watermark),
/// without joining a consumer group, and returns those that pass `filter`, one per source
/// position (copies from a crash between produce and commit are collapsed).
pub fn read_dead_letters(
    client_config: &ClientConfig,
    topic: &str,
    filter: &DeadLetterFilter,
) -> Result<Vec<DeadLetter>, IngestError> {
    Ok(select_dead_letters(client_config, topic, filter)?.letters)
}

/// Reads every dead letter currently in `topic` and selects from them with
/// [`DeadLetterSelection::select`].
pub fn select_dead_letters(
    client_config: &ClientConfig,
    topic: &str,
    filter: &DeadLetterFilter,
) -> Result<DeadLetterSelection, IngestError> {
    Ok(DeadLetterSelection::select(
        read_all(client_config, topic)?,
        filter,
    ))
}

/// Every dead letter of `topic` up to each partition's high watermark at the start.
fn read_all(client_config: &ClientConfig, topic: &str) -> Result<Vec<DeadLetter>, IngestError> {
    read_to_end(client_config, topic, "auditlog-dlq-reader", |message| {
        to_dead_letter(message)
    })
}

/// Every message of `topic` up to each partition's high watermark at the start, mapped by
/// `map`; read without a consumer group's offsets (`group` only names the reader).
pub(crate) fn read_to_end<T>(
    client_config: &ClientConfig,
    topic: &str,
    group: &str,
    map: impl Fn(&rdkafka::message::BorrowedMessage<'_>) -> T,
) -> Result<Vec<T>, IngestError> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = client_config
        .clone()
        .set("group.id", group)
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
    let mut letters = Vec::new();
    let mut remaining = ends;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !remaining.is_empty() && std::time::Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = result?;
        let partition = message.partition();
        let Some(end) = remaining.get(&partition).copied() else {
            continue;
        };
        if message.offset() + 1 >= end {
            remaining.remove(&partition);
        }
        if message.offset() < end {
            letters.push(map(&message));
        }
    }
    Ok(letters)
}

fn to_dead_letter(message: &impl Message) -> DeadLetter {
    let fields = header_fields(message.headers());
    let number = |key: &str| fields.get(key).and_then(|text| text.parse::<i64>().ok());
    let partition = |key: &str| number(key).and_then(|value| i32::try_from(value).ok());
    let payload = message.payload().map(<[u8]>::to_vec);
    DeadLetter {
        dlq_partition: message.partition(),
        dlq_offset: message.offset(),
        source_topic: fields.get(HEADER_SOURCE_TOPIC).cloned().unwrap_or_default(),
        source_partition: partition(HEADER_SOURCE_PARTITION).unwrap_or(-1),
        source_offset: number(HEADER_SOURCE_OFFSET).unwrap_or(-1),
        source_timestamp_ms: number(HEADER_SOURCE_TIMESTAMP),
        kind: fields.get(HEADER_KIND).cloned().unwrap_or_default(),
        reason: fields.get(HEADER_REASON).cloned().unwrap_or_default(),
        dead_lettered_at: fields
            .get(HEADER_DEAD_LETTERED_AT)
            .cloned()
            .unwrap_or_default(),
        replayed_at: partition(HEADER_REPLAYED_PARTITION).zip(number(HEADER_REPLAYED_OFFSET)),
        key: message.key().map(<[u8]>::to_vec),
        payload_bytes: payload.as_ref().map_or(0, Vec::len),
        payload_null: payload.is_none(),
        payload,
    }
}

/// The headers a replayed message carries: its original position and the letter it is sent
/// from, which let the ingester keep the position and recognise it when it fails again.
fn replay_headers(letter: &DeadLetter) -> OwnedHeaders {
    let texts = [
        (HEADER_REPLAY_ORIGIN_TOPIC, letter.source_topic.clone()),
        (
            HEADER_REPLAY_ORIGIN_PARTITION,
            letter.source_partition.to_string(),
        ),
        (
            HEADER_REPLAY_ORIGIN_OFFSET,
            letter.source_offset.to_string(),
        ),
        (
            HEADER_REPLAY_LETTER_PARTITION,
            letter.dlq_partition.to_string(),
        ),
        (HEADER_REPLAY_LETTER_OFFSET, letter.dlq_offset.to_string()),
        (HEADER_REPLAY_REASON, letter.reason.clone()),
    ];
    let mut headers = OwnedHeaders::new_with_capacity(texts.len() + 1);
    for (key, value) in &texts {
        headers = headers.insert(header(key, value));
    }
    if let Some(timestamp) = letter.source_timestamp_ms {
        headers = headers.insert(header(
            HEADER_REPLAY_ORIGIN_TIMESTAMP,
            &timestamp.to_string(),
        ));
    }
    headers
}

/// Sends dead letters back to `topic` with their original key and value (after a fix, e.g.
/// a newer ingester that reads their schema), each with its origin in `auditlog.replay.*`
/// headers. Letters without a source position are refused: they could not be recognised
/// when they failed again. Returns how many were sent.
pub async fn replay_dead_letters(
    client_config: &ClientConfig,
    topic: &str,
    letters: &[DeadLetter],
) -> Result<usize, IngestError> {
    if let Some(letter) = letters.iter().find(|letter| !letter.has_source_position()) {
        return Err(IngestError::ReplayWithoutPosition {
            partition: letter.dlq_partition,
            offset: letter.dlq_offset,
        });
    }
    let producer: FutureProducer = client_config
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let sends = letters.iter().map(|letter| {
        let producer = producer.clone();
        async move {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).headers(replay_headers(letter));
            if let Some(payload) = &letter.payload {
                record = record.payload(payload.as_slice());
            }
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
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    use super::*;

    fn letter(reason: &str, source_offset: i64) -> DeadLetter {
        DeadLetter {
            dlq_partition: 0,
            dlq_offset: 0,
            source_topic: "audit-events".into(),
            source_partition: 1,
            source_offset,
            source_timestamp_ms: Some(1_767_225_600_000),
            kind: "decode".into(),
            reason: reason.into(),
            dead_lettered_at: "2026-12-01T10:00:00Z".into(),
            replayed_at: None,
            key: Some(b"key".to_vec()),
            payload: Some(vec![0xC3]),
            payload_bytes: 1,
            payload_null: false,
        }
    }

    fn at(mut letter: DeadLetter, dlq_offset: i64, dead_lettered_at: &str) -> DeadLetter {
        letter.dlq_offset = dlq_offset;
        letter.dead_lettered_at = dead_lettered_at.into();
        letter
    }

    #[test]
    fn filter_by_reason_kind_and_offset_range() {
        let filter = DeadLetterFilter {
            reason_contains: Some("fingerprint".into()),
            min_source_offset: Some(10),
            max_source_offset: Some(20),
            ..DeadLetterFilter::default()
        };
        assert!(filter.matches(&letter("unknown schema fingerprint 0x12", 10)));
        assert!(!filter.matches(&letter("unknown schema fingerprint 0x12", 21)));
        assert!(!filter.matches(&letter("truncated datum", 15)));
        assert!(DeadLetterFilter::default().matches(&letter("anything", -1)));
        let by_kind = DeadLetterFilter {
            kind: Some("decode".into()),
            ..DeadLetterFilter::default()
        };
        assert!(by_kind.matches(&letter("truncated datum", 1)));
        let mut schema = letter("unknown schema fingerprint 0x12", 1);
        schema.kind = "unknown_schema".into();
        assert!(!by_kind.matches(&schema));
        // A kind is matched whole, not as a substring.
        let partial = DeadLetterFilter {
            kind: Some("schema".into()),
            ..DeadLetterFilter::default()
        };
        assert!(!partial.matches(&schema));
    }

    #[test]
    fn the_newest_letter_stands_for_its_source_position() {
        let first = at(
            letter("truncated datum at id", 5),
            0,
            "2026-12-01T10:00:00Z",
        );
        let crash_copy = at(
            letter("truncated datum at id", 5),
            1,
            "2026-12-01T10:00:00Z",
        );
        let mut replayed = at(letter("invalid uuid at id", 5), 7, "2026-12-01T11:00:00.5Z");
        replayed.replayed_at = Some((0, 900));
        let other = at(
            letter("truncated datum at id", 6),
            2,
            "2026-12-01T10:00:01Z",
        );
        let selection = DeadLetterSelection::select(
            vec![
                replayed.clone(),
                first.clone(),
                crash_copy.clone(),
                other.clone(),
            ],
            &DeadLetterFilter::default(),
        );
        assert_eq!(selection.letters, vec![replayed, other]);
        let mut skipped: Vec<_> = selection
            .skipped
            .iter()
            .map(|(why, l)| (*why, l.dlq_offset))
            .collect();
        skipped.sort();
        assert_eq!(
            skipped,
            vec![(SkipReason::Superseded, 0), (SkipReason::Superseded, 1)]
        );
    }

    #[test]
    fn filtered_and_unpositioned_letters_are_skipped_with_their_reason() {
        let mut foreign = letter("from elsewhere", -1);
        foreign.source_topic = String::new();
        let foreign_too = at(foreign.clone(), 3, "");
        let selection = DeadLetterSelection::select(
            vec![
                letter("truncated datum", 1),
                foreign.clone(),
                foreign_too.clone(),
                letter("truncated datum", 50),
            ],
            &DeadLetterFilter {
                max_source_offset: Some(10),
                min_source_offset: Some(-1),
                ..DeadLetterFilter::default()
            },
        );
        // Letters without a position are not collapsed into one: each is its own.
        assert_eq!(selection.letters.len(), 3);
        let replayable = selection.replayable();
        assert_eq!(replayable.letters, vec![letter("truncated datum", 1)]);
        assert_eq!(
            replayable.skipped_counts(),
            BTreeMap::from([
                (SkipReason::NotMatching, 1),
                (SkipReason::NoSourcePosition, 2)
            ])
        );
    }

    #[test]
    fn a_replayed_message_carries_its_letters_origin() {
        let mut sent_from = letter("unknown schema fingerprint 0x12", 42);
        sent_from.dlq_partition = 2;
        sent_from.dlq_offset = 17;
        let headers = replay_headers(&sent_from);
        assert_eq!(
            ReplayOrigin::from_headers(Some(&headers)),
            Some(ReplayOrigin {
                topic: "audit-events".into(),
                partition: 1,
                offset: 42,
                timestamp_millis: Some(1_767_225_600_000),
                letter: Some((2, 17)),
                reason: Some("unknown schema fingerprint 0x12".into()),
            })
        );
        // A message without a complete original position is not a replay.
        let partial = OwnedHeaders::new()
            .insert(header(HEADER_REPLAY_ORIGIN_TOPIC, "audit-events"))
            .insert(header(HEADER_REPLAY_ORIGIN_OFFSET, "42"));
        assert_eq!(ReplayOrigin::from_headers(Some(&partial)), None);
        assert_eq!(ReplayOrigin::from_headers(None::<&OwnedHeaders>), None);
    }

    #[test]
    fn a_replay_is_recorded_only_by_its_letter_with_the_same_reason_still_present() {
        let origin = ReplayOrigin {
            topic: "audit-events".into(),
            partition: 0,
            offset: 7,
            timestamp_millis: None,
            letter: Some((1, 40)),
            reason: Some("truncated datum at id".into()),
        };
        let present = BTreeMap::from([(1, (10, 50))]);
        assert!(origin.still_recorded("truncated datum at id", &present));
        assert!(!origin.still_recorded("invalid uuid at id", &present));
        // Deleted by retention, or the range unknown: write a new letter.
        assert!(!origin.still_recorded("truncated datum at id", &BTreeMap::from([(1, (41, 50))])));
        assert!(!origin.still_recorded("truncated datum at id", &BTreeMap::new()));
        let unnamed = ReplayOrigin {
            letter: None,
            ..origin
        };
        assert!(!unnamed.still_recorded("truncated datum at id", &present));
    }

    #[test]
    fn a_null_value_reads_back_as_null_not_empty() {
        let headers = OwnedHeaders::new()
            .insert(header(HEADER_SOURCE_TOPIC, "audit-events"))
            .insert(header(HEADER_SOURCE_PARTITION, "3"))
            .insert(header(HEADER_SOURCE_OFFSET, "9"))
            .insert(header(HEADER_REPLAYED_PARTITION, "0"))
            .insert(header(HEADER_REPLAYED_OFFSET, "120"));
        let tombstone = OwnedMessage::new(
            None,
            Some(b"k".to_vec()),
            "audit-events-dlq".into(),
            Timestamp::NotAvailable,
            0,
            4,
            Some(headers.clone()),
        );
        let letter = to_dead_letter(&tombstone);
        assert_eq!(letter.payload, None);
        assert!(letter.payload_null);
        assert_eq!((letter.source_partition, letter.source_offset), (3, 9));
        assert_eq!(letter.replayed_at, Some((0, 120)));
        let empty = OwnedMessage::new(
            Some(Vec::new()),
            None,
            "audit-events-dlq".into(),
            Timestamp::NotAvailable,
            0,
            5,
            Some(headers),
        );
        let letter = to_dead_letter(&empty);
        assert_eq!(letter.payload, Some(Vec::new()));
        assert!(!letter.payload_null);
    }
}
