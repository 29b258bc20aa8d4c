//! The dead letter itself: what a letter in the dead-letter topic holds and the headers it
//! carries.
//!
//! On the way in, a [`Poison`] message (one that cannot become a row) becomes a letter: its
//! original key and value, unchanged (a null value stays null), plus the [`headers`] that say
//! why and where it came from. On the way out, [`DeadLetter`] is a letter read back. A message
//! sent by `auditlog dlq replay` carries its [`ReplayOrigin`] in `auditlog.replay.*` headers.

use std::collections::BTreeMap;

use rdkafka::message::{Header, Headers, Message};
use serde::Serialize;

use self::headers::{
    HEADER_DEAD_LETTERED_AT, HEADER_KIND, HEADER_REASON, HEADER_REPLAY_LETTER_OFFSET,
    HEADER_REPLAY_LETTER_PARTITION, HEADER_REPLAY_ORIGIN_OFFSET, HEADER_REPLAY_ORIGIN_PARTITION,
    HEADER_REPLAY_ORIGIN_TIMESTAMP, HEADER_REPLAY_ORIGIN_TOPIC, HEADER_REPLAY_REASON,
    HEADER_REPLAYED_OFFSET, HEADER_REPLAYED_PARTITION, HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION, HEADER_SOURCE_TIMESTAMP, HEADER_SOURCE_TOPIC,
};

/// The Kafka headers of a dead letter (`auditlog.dlq.*`) and of a replayed message
/// (`auditlog.replay.*`): their names as they are on the wire.
pub mod headers {
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
}

/// A message that cannot become a row, kept for the dead-letter topic.
#[derive(Debug, Clone)]
pub(crate) struct Poison {
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    /// `None` for a null value (a tombstone), which the dead letter keeps null.
    pub(crate) payload: Option<Vec<u8>>,
    /// Kafka message timestamp in milliseconds, if any.
    pub(crate) timestamp_millis: Option<i64>,
    /// Where a replayed message first came from (`auditlog dlq replay`).
    pub(crate) replay: Option<ReplayOrigin>,
    /// Short machine-readable class, e.g. `decode`, `unknown_schema`, `invalid_event`.
    pub(crate) kind: &'static str,
    /// The specific reason, for humans.
    pub(crate) reason: String,
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

/// A message of the dead-letter topic as a letter.
pub(super) fn to_dead_letter(message: &impl Message) -> DeadLetter {
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

/// A header with a text value.
pub(super) fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::{OwnedHeaders, OwnedMessage};

    use super::*;

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
