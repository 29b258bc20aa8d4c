//! What the verifier found: the report's tallies and the problems it names, in the words
//! `auditlog verify` prints.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

/// One thing `auditlog verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// Offsets a batch covers whose events are gone (a run of consecutive offsets).
    DeletedEvents {
        /// The partition.
        partition: i32,
        /// The first missing offset of the run.
        first_offset: i64,
        /// The last missing offset of the run.
        last_offset: i64,
        /// Missing events in the run.
        count: u64,
    },
    /// A stored event whose contents differ from what its batch recorded.
    ModifiedEvent {
        /// The event's id as stored now.
        id: Uuid,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
    },
    /// A stored event that no batch on the chain wrote: forged or inserted.
    UncoveredEvent {
        /// The event's id.
        id: Uuid,
        /// The partition it claims.
        partition: i32,
        /// The offset it claims.
        offset: i64,
        /// Why it is not covered.
        reason: String,
    },
    /// A batch whose link to the one before it, or to a signed head, leads nowhere.
    BrokenLink {
        /// The partition.
        partition: i32,
        /// The batch (or head) where the chain breaks.
        first_offset: i64,
        /// Its last offset.
        last_offset: i64,
        /// What is missing.
        reason: String,
    },
    /// A digest row whose own fields do not hash to its digest, or whose root does not match
    /// its stored rows.
    BatchMismatch {
        /// The partition.
        partition: i32,
        /// The batch's first offset.
        first_offset: i64,
        /// The batch's last offset.
        last_offset: i64,
        /// What does not match.
        reason: String,
    },
    /// More uncovered events than are listed one by one.
    MoreUncoveredEvents {
        /// How many more.
        count: u64,
    },
    /// Batches exist, but no valid checkpoint signs any of them.
    NothingSigned {
        /// Batches checked.
        batches: u64,
    },
    /// A checkpoint whose signature does not match its text.
    BadSignature {
        /// Where this copy came from.
        source: String,
        /// The key it names.
        key_id: String,
        /// When it says it was signed, µs since the epoch.
        signed_at: i64,
    },
    /// A checkpoint signed by a key that is not trusted.
    UnknownKey {
        /// Where this copy came from.
        source: String,
        /// The key it names.
        key_id: String,
        /// When it says it was signed.
        signed_at: i64,
    },
    /// A stored checkpoint that is not a checkpoint at all.
    MalformedCheckpoint {
        /// Where it came from.
        source: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint present in one source and missing from another.
    MissingCheckpoint {
        /// The source that lacks it.
        missing_from: String,
        /// The sources that have it.
        present_in: Vec<String>,
        /// The key it names.
        key_id: String,
        /// When it says it was signed.
        signed_at: i64,
    },
    /// A signed chain head that is not on the partition's chain: history was rewritten.
    HeadNotOnChain {
        /// The partition.
        partition: i32,
        /// The head's last offset.
        last_offset: i64,
        /// The checkpoint's key.
        key_id: String,
        /// When it was signed.
        signed_at: i64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeletedEvents {
                partition,
                first_offset,
                last_offset,
                count,
            } => write!(
                formatter,
                "deleted: {count} event(s) at partition {partition} offsets {first_offset}..={last_offset}"
            ),
            Self::ModifiedEvent {
                id,
                partition,
                offset,
            } => write!(
                formatter,
                "modified: event {id} at partition {partition} offset {offset} differs from what its batch recorded"
            ),
            Self::UncoveredEvent {
                id,
                partition,
                offset,
                reason,
            } => write!(
                formatter,
                "forged or inserted: event {id} (partition {partition} offset {offset}) {reason}"
            ),
            Self::BrokenLink {
                partition,
                first_offset,
                last_offset,
                reason,
            } => write!(
                formatter,
                "broken chain: partition {partition} batch {first_offset}..={last_offset}: {reason}"
            ),
            Self::BatchMismatch {
                partition,
                first_offset,
                last_offset,
                reason,
            } => write!(
                formatter,
                "batch mismatch: partition {partition} batch {first_offset}..={last_offset}: {reason}"
            ),
            Self::MoreUncoveredEvents { count } => write!(
                formatter,
                "forged or inserted: {count} more event(s) covered by no batch"
            ),
            Self::NothingSigned { batches } => write!(
                formatter,
                "unsigned: {batches} batch(es) are digested but no valid checkpoint signs them"
            ),
            Self::BadSignature {
                source,
                key_id,
                signed_at,
            } => write!(
                formatter,
                "bad signature: checkpoint of key {key_id} signed at {} in {source}",
                format_micros(*signed_at)
            ),
            Self::UnknownKey {
                source,
                key_id,
                signed_at,
            } => write!(
                formatter,
                "unknown key: checkpoint signed at {} in {source} names key {key_id}, which is not trusted",
                format_micros(*signed_at)
            ),
            Self::MalformedCheckpoint { source, reason } => {
                write!(formatter, "malformed checkpoint in {source}: {reason}")
            }
            Self::MissingCheckpoint {
                missing_from,
                present_in,
                key_id,
                signed_at,
            } => write!(
                formatter,
                "missing checkpoint: the checkpoint of key {key_id} signed at {} is in {} but not in {missing_from}",
                format_micros(*signed_at),
                present_in.join(", ")
            ),
            Self::HeadNotOnChain {
                partition,
                last_offset,
                key_id,
                signed_at,
            } => write!(
                formatter,
                "rewritten history: the head of partition {partition} at offset {last_offset} signed at {} by key {key_id} is not on the chain",
                format_micros(*signed_at)
            ),
        }
    }
}

/// Microseconds since the epoch as RFC 3339, for messages (the number itself when it is
/// outside the dates `time` represents).
pub fn format_micros(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{micros} µs"))
}
/// Valid out of total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// How many passed.
    pub valid: u64,
    /// How many were checked.
    pub total: u64,
}

impl Tally {
    pub(super) fn add(&mut self, valid: bool) {
        self.total += 1;
        self.valid += u64::from(valid);
    }
}

/// What `auditlog verify` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Distinct checkpoints: valid ones verify with a trusted key and are in every source.
    pub checkpoints: Tally,
    /// Batches on the chains.
    pub batches: Tally,
    /// Events the batches recorded (expired ones excluded).
    pub events: Tally,
    /// Events gone because they lie wholly before the retention boundary.
    pub expired_events: u64,
    /// Batches after the newest signed head (checked, but not yet covered by a signature).
    pub unsigned_batches: u64,
    /// Digest rows on no chain (a zombie ingester's branch during a rebalance).
    pub off_chain_batches: u64,
    /// Events written while verify ran, in batches recorded meanwhile: placed, not checked.
    pub unchecked_late_events: u64,
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether nothing was found wrong.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// Names batches that no valid checkpoint signs at all, once every chain was walked
    /// (`signed_partitions`: how many partitions a valid checkpoint names).
    pub fn require_signatures(&mut self, signed_partitions: usize) {
        if self.batches.total > 0 && signed_partitions == 0 {
            self.problems.push(Problem::NothingSigned {
                batches: self.batches.total,
            });
        }
    }

    /// "N/N checkpoints valid, M/M batches valid, K/K events valid".
    pub fn summary(&self) -> String {
        format!(
            "{}/{} checkpoints valid, {}/{} batches valid, {}/{} events valid",
            self.checkpoints.valid,
            self.checkpoints.total,
            self.batches.valid,
            self.batches.total,
            self.events.valid,
            self.events.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_that_no_checkpoint_signs_are_unsigned_and_invalid() {
        let mut report = Report::default();
        report.batches.add(true);
        report.batches.add(true);
        report.require_signatures(1);
        assert!(report.is_valid(), "a partition is signed");
        report.require_signatures(0);
        assert_eq!(report.problems, vec![Problem::NothingSigned { batches: 2 }]);
        assert_eq!(
            report.problems[0].to_string(),
            "unsigned: 2 batch(es) are digested but no valid checkpoint signs them"
        );

        let mut empty = Report::default();
        empty.require_signatures(0);
        assert!(empty.is_valid(), "nothing digested, nothing to sign");
    }

    #[test]
    fn the_summary_counts_valid_out_of_checked() {
        let mut report = Report::default();
        report.checkpoints.add(true);
        report.batches.add(false);
        report.events.add(true);
        report.events.add(true);
        assert_eq!(
            report.summary(),
            "1/1 checkpoints valid, 0/1 batches valid, 2/2 events valid"
        );
    }

    #[test]
    fn times_in_messages_are_rfc_3339() {
        assert_eq!(format_micros(1_500_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(format_micros(i64::MAX), format!("{} µs", i64::MAX));
        let problem = Problem::HeadNotOnChain {
            partition: 3,
            last_offset: 9000,
            key_id: "k".to_owned(),
            signed_at: 0,
        };
        assert_eq!(
            problem.to_string(),
            "rewritten history: the head of partition 3 at offset 9000 signed at \
             1970-01-01T00:00:00Z by key k is not on the chain"
        );
    }
}
