//! The operators' tooling behind `auditlog dlq`: read the letters back, select the ones to
//! act on (one per source position), and replay them into the main topic.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::IngestError;
use crate::dlq::letter::headers::{
    HEADER_REPLAY_LETTER_OFFSET, HEADER_REPLAY_LETTER_PARTITION, HEADER_REPLAY_ORIGIN_OFFSET,
    HEADER_REPLAY_ORIGIN_PARTITION, HEADER_REPLAY_ORIGIN_TIMESTAMP, HEADER_REPLAY_ORIGIN_TOPIC,
    HEADER_REPLAY_REASON,
};
use crate::dlq::letter::{DeadLetter, header, to_dead_letter};

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
    read_to_end(
        client_config,
        topic,
        "auditlog-dlq-reader",
        None,
        |message| to_dead_letter(message),
    )
}

/// Every message of `topic` up to each partition's high watermark at the start, mapped by
/// `map`; from the first message with a timestamp at or after `since_millis` when given;
/// read without a consumer group's offsets (`group` only names the reader).
pub(crate) fn read_to_end<T>(
    client_config: &ClientConfig,
    topic: &str,
    group: &str,
    since_millis: Option<i64>,
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
    if let Some(since) = since_millis {
        let mut times = TopicPartitionList::new();
        for partition in ends.keys() {
            times.add_partition_offset(topic, *partition, Offset::Offset(since))?;
        }
        for element in consumer.offsets_for_times(times, timeout)?.elements() {
            match element.offset() {
                // Nothing at or after the time: the partition has nothing to read.
                Offset::End => {
                    ends.remove(&element.partition());
                }
                offset @ Offset::Offset(_) => {
                    assignment.set_partition_offset(topic, element.partition(), offset)?;
                }
                _ => {}
            }
        }
        assignment = assignment
            .elements()
            .into_iter()
            .filter(|element| ends.contains_key(&element.partition()))
            .fold(TopicPartitionList::new(), |mut list, element| {
                let _ = list.add_partition_offset(topic, element.partition(), element.offset());
                list
            });
        if ends.is_empty() {
            return Ok(Vec::new());
        }
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
    use super::*;
    use crate::dlq::letter::ReplayOrigin;

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
}
