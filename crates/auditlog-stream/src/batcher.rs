//! A sink's open batches, one per partition, and when each is sealed.
//!
//! Every consumed message joins its partition's open batch, whatever becomes of it (an
//! event, filtered out, malformed), so a sealed batch covers a contiguous range of offsets and
//! committing after it skips nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use auditlog_event::{AuditEvent, EventCodec, EventError};
use auditlog_query::ResolvedFilter;

use crate::config::BatchLimits;
use crate::format::Format;
use crate::matcher::matches;
use crate::sink::{Batch, Record};

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Formatted into the batch.
    Kept,
    /// Left out by the filter.
    Filtered,
    /// Not a valid event, for this reason.
    Malformed(&'static str),
}

#[derive(Debug)]
struct Open {
    batch: Batch,
    bytes: usize,
    opened: Instant,
}

/// The open batches of one sink.
#[derive(Debug)]
pub(crate) struct Batcher {
    topic: String,
    format: Format,
    filter: ResolvedFilter,
    limits: BatchLimits,
    codec: EventCodec,
    open: BTreeMap<i32, Open>,
}

impl Batcher {
    pub(crate) fn new(
        topic: &str,
        format: Format,
        filter: ResolvedFilter,
        limits: BatchLimits,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            format,
            filter,
            limits,
            codec: EventCodec::new(auditlog_event::Framing::SingleObject),
            open: BTreeMap::new(),
        }
    }

    /// Adds one message; returns what became of it, and the partition's batch when the
    /// message filled it (or `seal_now` asked for it, e.g. at a caught-up target).
    pub(crate) fn push(
        &mut self,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
        seal_now: bool,
    ) -> (Outcome, Option<Batch>) {
        let (outcome, record) = match payload.map(|bytes| self.decode(bytes)) {
            None => (Outcome::Malformed("null_value"), None),
            Some(Err(error)) => (Outcome::Malformed(malformed_reason(&error)), None),
            Some(Ok(event)) if !matches(&self.filter, &event) => (Outcome::Filtered, None),
            Some(Ok(event)) => {
                let mut json = Vec::with_capacity(1024);
                self.format.write(&event, &mut json);
                (
                    Outcome::Kept,
                    Some(Record {
                        offset,
                        id: event.id,
                        time: event.time,
                        json,
                    }),
                )
            }
        };
        let open = self.open.entry(partition).or_insert_with(|| Open {
            batch: Batch {
                topic: self.topic.clone(),
                partition,
                first_offset: offset,
                last_offset: offset,
                records: Vec::new(),
                filtered: 0,
                malformed: 0,
                format: self.format,
            },
            bytes: 0,
            opened: Instant::now(),
        });
        open.batch.last_offset = offset;
        match (outcome, record) {
            (_, Some(record)) => {
                open.bytes += record.json.len() + 1;
                open.batch.records.push(record);
            }
            (Outcome::Filtered, None) => open.batch.filtered += 1,
            (_, None) => open.batch.malformed += 1,
        }
        let full = open.batch.records.len() >= self.limits.max_events
            || open.bytes >= self.limits.max_bytes;
        let sealed = (full || seal_now)
            .then(|| self.open.remove(&partition).map(|open| open.batch))
            .flatten();
        (outcome, sealed)
    }

    /// Seals and returns every batch opened at least `max_age` ago, oldest partitions first.
    pub(crate) fn take_aged(&mut self, now: Instant) -> Vec<Batch> {
        let aged: Vec<i32> = self
            .open
            .iter()
            .filter(|(_, open)| now.duration_since(open.opened) >= self.limits.max_age)
            .map(|(partition, _)| *partition)
            .collect();
        aged.into_iter()
            .filter_map(|partition| self.open.remove(&partition).map(|open| open.batch))
            .collect()
    }

    /// Whether any batch is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn decode(&self, payload: &[u8]) -> Result<AuditEvent, EventError> {
        // The ingester's general path: what it dead-letters is exactly what is skipped here.
        let event = self.codec.decode(payload)?;
        event.validate_allow_unknown()?;
        Ok(event)
    }
}

/// The dead-letter kind the ingester gives the same message.
fn malformed_reason(error: &EventError) -> &'static str {
    match error {
        EventError::UnknownFingerprint { .. }
        | EventError::UnknownSchemaId { .. }
        | EventError::UnknownSchemaVersion { .. } => "unknown_schema",
        EventError::Empty
        | EventError::TooShort { .. }
        | EventError::UnknownMagic { .. }
        | EventError::Truncated { .. }
        | EventError::MalformedVarint { .. }
        | EventError::NegativeLength { .. }
        | EventError::InvalidUnionIndex { .. }
        | EventError::InvalidBool { .. }
        | EventError::InvalidUuid { .. }
        | EventError::InvalidIp
        | EventError::InvalidJson { .. }
        | EventError::TrailingBytes { .. }
        | EventError::Avro { .. } => "decode",
        _ => "invalid_event",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use auditlog_event::testing::sample_events;
    use auditlog_query::{AuditFilter, Resolver};

    use super::*;

    fn batcher(query: &str, max_events: usize) -> Batcher {
        let filter = AuditFilter::parse(query)
            .unwrap()
            .resolve(&Resolver::new())
            .unwrap();
        let limits = BatchLimits {
            max_events,
            max_bytes: usize::MAX,
            max_age: Duration::from_secs(3600),
        };
        Batcher::new("topic", Format::Coder, filter, limits)
    }

    #[test]
    fn a_batch_covers_every_offset_whatever_became_of_each_message() {
        let events = sample_events();
        let codec = EventCodec::new(auditlog_event::Framing::SingleObject);
        let kept = &events[0];
        let mut batcher = batcher(&format!("request_id:{}", kept.request_id), 2);
        let payload = codec.encode_to_vec(kept).unwrap();
        let other = events
            .iter()
            .find(|event| event.request_id != kept.request_id)
            .unwrap();
        let other_payload = codec.encode_to_vec(other).unwrap();
        assert_eq!(
            batcher.push(3, 10, Some(b"junk"), false).0,
            Outcome::Malformed("decode")
        );
        assert_eq!(
            batcher.push(3, 11, None, false).0,
            Outcome::Malformed("null_value")
        );
        assert_eq!(
            batcher.push(3, 12, Some(&other_payload), false).0,
            Outcome::Filtered
        );
        let (outcome, sealed) = batcher.push(3, 13, Some(&payload), false);
        assert_eq!(outcome, Outcome::Kept);
        assert!(sealed.is_none(), "one event of two");
        let (_, sealed) = batcher.push(3, 15, Some(&payload), false);
        let batch = sealed.expect("two events fill it");
        assert_eq!((batch.first_offset, batch.last_offset), (10, 15));
        assert_eq!((batch.filtered, batch.malformed), (1, 2));
        assert_eq!(
            batch
                .records
                .iter()
                .map(|record| record.offset)
                .collect::<Vec<_>>(),
            [13, 15]
        );
        assert_eq!(batch.records[0].id, kept.id);
        assert_eq!(batch.range_key(), "topic/3/10-15");
        assert!(batcher.is_empty());
    }

    #[test]
    fn partitions_batch_apart_and_age_out() {
        let mut batcher = batcher("", 100);
        batcher.push(0, 5, Some(b"x"), false);
        batcher.push(1, 7, Some(b"x"), false);
        assert!(batcher.take_aged(Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_secs(3601);
        let aged = batcher.take_aged(later);
        assert_eq!(
            aged.iter().map(|batch| batch.partition).collect::<Vec<_>>(),
            [0, 1]
        );
        let (_, sealed) = batcher.push(2, 9, Some(b"x"), true);
        assert_eq!(sealed.map(|batch| batch.last_offset), Some(9));
    }
}
