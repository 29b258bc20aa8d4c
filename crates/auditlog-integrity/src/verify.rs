//! The verifier's judgement, without I/O: from stored checkpoints, digests and rows to a
//! report that names every problem.
//!
//! ```text
//!  checkpoint copies (clickhouse, kafka, files) ──check_checkpoints──► signed heads + problems
//!  digest rows of a partition + signed heads ──PartitionChain::walk──► the chain, oldest first
//!  each chain batch + its stored rows ──check_batch──► deleted / modified / forged events
//!  rows outside every chain batch ──uncovered──► forged or inserted events
//! ```
//!
//! The chain is walked backwards from the newest signed head by each batch's recorded
//! previous digest, so branches left by a zombie ingester during a rebalance are simply off
//! the chain, and a deleted or rewritten digest row shows up as a link that leads nowhere.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use auditlog_store::{DigestRow, StoredRow};

/// A stored row as the verifier keeps it: where it claims to be, its id, and its leaf (the
/// row's bytes are hashed as they arrive and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafRow {
    /// The row's id.
    pub id: Uuid,
    /// Its source partition.
    pub partition: i32,
    /// Its source offset.
    pub offset: i64,
    /// `event_leaf` of its bytes.
    pub leaf: Hash,
}

impl From<&StoredRow<'_>> for LeafRow {
    fn from(row: &StoredRow<'_>) -> Self {
        Self {
            id: row.id,
            partition: row.source.partition,
            offset: row.source.offset,
            leaf: event_leaf(row.bytes),
        }
    }
}

/// The leaf rows of stored rows.
pub fn leaf_rows(rows: &[StoredRow<'_>]) -> Vec<LeafRow> {
    rows.iter().map(LeafRow::from).collect()
}
use serde::Serialize;
use uuid::Uuid;

use crate::chain::{
    BatchRange, GENESIS, LEAF_PREFIX_BYTES, batch_digest, dead_letter_leaf_of, event_leaf,
};
use crate::checkpoint::{Envelope, TrustedKeys};
use crate::{Hash, IntegrityError, merkle};

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
    fn add(&mut self, valid: bool) {
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

/// A signed chain head, with where it was signed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedHead {
    /// The head's last offset.
    pub last_offset: i64,
    /// The head's digest.
    pub digest: Hash,
    /// When the checkpoint was signed, µs since the epoch.
    pub signed_at: i64,
    /// The key that signed it.
    pub key_id: String,
}

/// Checks every checkpoint copy against the trusted keys and the other sources; returns the
/// heads of `topic` that validly signed checkpoints name, by partition.
pub fn check_checkpoints(
    sources: &[(String, Vec<Envelope>)],
    trusted: &TrustedKeys,
    topic: &str,
    report: &mut Report,
) -> BTreeMap<i32, Vec<SignedHead>> {
    let mut envelopes: BTreeMap<&str, Vec<(&str, &Envelope)>> = BTreeMap::new();
    for (source, list) in sources {
        for envelope in list {
            envelopes
                .entry(envelope.body.as_str())
                .or_default()
                .push((source.as_str(), envelope));
        }
    }
    let mut heads: BTreeMap<i32, Vec<SignedHead>> = BTreeMap::new();
    for list in envelopes.values() {
        let mut valid = true;
        let mut opened = None;
        let mut seen_signatures = HashSet::new();
        for (source, envelope) in list {
            if !seen_signatures.insert(&envelope.signature) {
                continue;
            }
            let signed = match envelope.open() {
                Ok(signed) => signed,
                Err(error) => {
                    valid = false;
                    report.problems.push(Problem::MalformedCheckpoint {
                        source: (*source).to_owned(),
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            let (key_id, signed_at) = (
                signed.checkpoint.key_id.clone(),
                signed.checkpoint.time_micros,
            );
            match trusted.verify(&signed) {
                Ok(()) => opened = Some(signed),
                Err(IntegrityError::UnknownKey { .. }) => {
                    valid = false;
                    report.problems.push(Problem::UnknownKey {
                        source: (*source).to_owned(),
                        key_id,
                        signed_at,
                    });
                }
                Err(_) => {
                    valid = false;
                    report.problems.push(Problem::BadSignature {
                        source: (*source).to_owned(),
                        key_id,
                        signed_at,
                    });
                }
            }
        }
        let present: BTreeSet<&str> = list.iter().map(|(source, _)| *source).collect();
        if let Some(signed) = &opened {
            for (source, _) in sources {
                if !present.contains(source.as_str()) {
                    valid = false;
                    report.problems.push(Problem::MissingCheckpoint {
                        missing_from: source.clone(),
                        present_in: present.iter().map(|name| (*name).to_owned()).collect(),
                        key_id: signed.checkpoint.key_id.clone(),
                        signed_at: signed.checkpoint.time_micros,
                    });
                }
            }
            for head in &signed.checkpoint.heads {
                if head.topic == topic {
                    heads.entry(head.partition).or_default().push(SignedHead {
                        last_offset: head.last_offset,
                        digest: head.digest,
                        signed_at: signed.checkpoint.time_micros,
                        key_id: signed.checkpoint.key_id.clone(),
                    });
                }
            }
        }
        report.checkpoints.add(valid && opened.is_some());
    }
    for list in heads.values_mut() {
        list.sort();
    }
    heads
}

/// One partition's chain: which digest rows it runs through, oldest first.
#[derive(Debug)]
pub struct PartitionChain {
    /// The partition.
    pub partition: i32,
    /// The digest rows (deduplicated, by offset).
    pub rows: Vec<DigestRow>,
    /// Indices into `rows` of the chain, oldest first.
    pub chain: Vec<usize>,
    /// The newest signed head's last offset: batches after it are unsigned.
    pub signed_up_to: Option<i64>,
}

impl PartitionChain {
    /// Walks the chain back from the newest signed head (or from the newest batch when no
    /// checkpoint names this partition) until a chain start, or until the batch at or before
    /// `window_start` (the earliest offset asked about), then forward through the batches
    /// recorded after the head. Problems go into `report`.
    pub fn walk(
        partition: i32,
        mut rows: Vec<DigestRow>,
        heads: &[SignedHead],
        window_start: Option<i64>,
        report: &mut Report,
    ) -> Self {
        rows.sort_by(|a, b| {
            (a.first_offset, a.last_offset, a.digest).cmp(&(
                b.first_offset,
                b.last_offset,
                b.digest,
            ))
        });
        rows.dedup();
        let mut consistent = vec![true; rows.len()];
        let mut by_digest: HashMap<Hash, Vec<usize>> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let recomputed = batch_digest(&row.previous_digest, &range_of(row), &row.root);
            if recomputed != row.digest {
                consistent[index] = false;
                report.problems.push(Problem::BatchMismatch {
                    partition,
                    first_offset: row.first_offset,
                    last_offset: row.last_offset,
                    reason: "its digest does not match its own range, root and previous digest: \
                             the digest row was rewritten"
                        .to_owned(),
                });
            }
            by_digest.entry(row.digest).or_default().push(index);
        }
        let find = |digest: &Hash| -> Option<usize> {
            let candidates = by_digest.get(digest)?;
            candidates
                .iter()
                .copied()
                .find(|index| consistent[*index])
                .or_else(|| candidates.first().copied())
        };

        let top = heads.iter().max_by_key(|head| head.last_offset);
        let mut visited: Vec<usize> = Vec::new();
        let mut on_chain: HashSet<usize> = HashSet::new();
        let mut cursor: Option<Hash> = None;
        // Where the walk stands when a link is missing: resume at the batch before it.
        let mut resume_below: Option<i64> = None;
        match top {
            Some(head) => match find(&head.digest) {
                Some(index) => cursor = Some(rows[index].digest),
                None => {
                    report.problems.push(Problem::BrokenLink {
                        partition,
                        first_offset: head.last_offset,
                        last_offset: head.last_offset,
                        reason: format!(
                            "the head signed at {} names digest {}, which no digest row has \
                             (deleted or rewritten)",
                            format_micros(head.signed_at),
                            hex::encode(head.digest)
                        ),
                    });
                    resume_below = Some(head.last_offset + 1);
                }
            },
            None => {
                cursor = rows
                    .iter()
                    .max_by_key(|row| row.last_offset)
                    .map(|row| row.digest);
            }
        }
        loop {
            if cursor.is_none() {
                let Some(below) = resume_below.take() else {
                    break;
                };
                cursor = rows
                    .iter()
                    .enumerate()
                    .filter(|(index, row)| row.last_offset < below && !on_chain.contains(index))
                    .max_by_key(|(_, row)| row.last_offset)
                    .map(|(_, row)| row.digest);
                if cursor.is_none() {
                    break;
                }
            }
            let digest = cursor.take().expect("set above");
            let Some(index) = find(&digest).filter(|index| !on_chain.contains(index)) else {
                break;
            };
            visited.push(index);
            on_chain.insert(index);
            let row = &rows[index];
            if row.previous_digest == GENESIS
                || window_start.is_some_and(|start| row.first_offset <= start)
            {
                break;
            }
            if find(&row.previous_digest).is_some() {
                cursor = Some(row.previous_digest);
            } else {
                report.problems.push(Problem::BrokenLink {
                    partition,
                    first_offset: row.first_offset,
                    last_offset: row.last_offset,
                    reason: format!(
                        "its previous digest {} is in no digest row (the batch before it was \
                         deleted or rewritten)",
                        hex::encode(row.previous_digest)
                    ),
                });
                resume_below = Some(row.first_offset);
            }
        }
        visited.reverse();

        // Forward from the newest signed batch: what was recorded since the last checkpoint.
        let signed_up_to = top.map(|head| head.last_offset);
        if let Some(mut tip) = visited.last().map(|index| rows[*index].digest)
            && signed_up_to.is_some()
        {
            while let Some(next) = rows
                .iter()
                .enumerate()
                .filter(|(index, row)| row.previous_digest == tip && !on_chain.contains(index))
                .min_by_key(|(_, row)| (row.first_offset, row.last_offset))
                .map(|(index, _)| index)
            {
                visited.push(next);
                on_chain.insert(next);
                tip = rows[next].digest;
            }
        }

        let chain_digests: HashMap<Hash, i64> = visited
            .iter()
            .map(|index| (rows[*index].digest, rows[*index].last_offset))
            .collect();
        let lowest = visited.first().map(|index| rows[*index].first_offset);
        for head in heads {
            if lowest.is_some_and(|lowest| head.last_offset < lowest) {
                continue;
            }
            if chain_digests.get(&head.digest) != Some(&head.last_offset) {
                report.problems.push(Problem::HeadNotOnChain {
                    partition,
                    last_offset: head.last_offset,
                    key_id: head.key_id.clone(),
                    signed_at: head.signed_at,
                });
            }
        }
        report.off_chain_batches += (rows.len() - visited.len()) as u64;
        Self {
            partition,
            rows,
            chain: visited,
            signed_up_to,
        }
    }

    /// The chain's batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &DigestRow> {
        self.chain.iter().map(|index| &self.rows[*index])
    }

    /// The offset spans the chain covers, merged where batches are contiguous.
    pub fn spans(&self) -> Vec<(i64, i64)> {
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for batch in self.batches() {
            match spans.last_mut() {
                Some(last) if batch.first_offset <= last.1 + 1 => {
                    last.1 = last.1.max(batch.last_offset);
                }
                _ => spans.push((batch.first_offset, batch.last_offset)),
            }
        }
        spans
    }
}

/// The range header a digest covers.
pub fn range_of(row: &DigestRow) -> BatchRange {
    BatchRange {
        topic: row.topic.clone(),
        partition: row.partition,
        first_offset: row.first_offset,
        last_offset: row.last_offset,
        count: row.num_messages,
    }
}

/// The offsets of a batch that have a leaf, in leaf order.
pub fn leaf_offsets(batch: &DigestRow) -> Vec<i64> {
    let skipped: HashSet<i64> = batch.skipped_offsets.iter().copied().collect();
    (batch.first_offset..=batch.last_offset)
        .filter(|offset| !skipped.contains(offset))
        .collect()
}

/// What one batch's check found.
#[derive(Debug, Default)]
pub struct BatchCheck {
    /// The full leaves, in order, when every one could be recomputed from stored data.
    pub leaves: Option<Vec<Hash>>,
    /// Whether the batch holds: its root matches its stored rows.
    pub valid: bool,
}

/// Checks one chain batch against its stored rows (`rows`: every stored row whose source
/// is this batch's partition and an offset in its range, in any order). `expired_before`:
/// the retention boundary (µs), if configuration sets one.
pub fn check_batch(
    batch: &DigestRow,
    rows: &[LeafRow],
    expired_before: Option<i64>,
    report: &mut Report,
) -> BatchCheck {
    let partition = batch.partition;
    let mismatch = |reason: String| Problem::BatchMismatch {
        partition,
        first_offset: batch.first_offset,
        last_offset: batch.last_offset,
        reason,
    };
    let offsets = leaf_offsets(batch);
    let problems_before = report.problems.len();
    if offsets.len() != batch.num_messages as usize
        || batch.leaf_prefixes.len() != offsets.len() * LEAF_PREFIX_BYTES
        || batch.dead_letter_offsets.len() != batch.dead_letter_hashes.len()
    {
        report.problems.push(mismatch(
            "its counts, skipped offsets and leaf prefixes disagree: the digest row was rewritten"
                .to_owned(),
        ));
        report.batches.add(false);
        return BatchCheck::default();
    }
    let dead_letters: HashMap<i64, &Hash> = batch
        .dead_letter_offsets
        .iter()
        .copied()
        .zip(batch.dead_letter_hashes.iter())
        .collect();
    // In offset order, so each offset's copies are one slice (no map per row).
    let mut sorted: Vec<&LeafRow> = rows.iter().collect();
    if !sorted.is_sorted_by_key(|row| row.offset) {
        sorted.sort_by_key(|row| row.offset);
    }
    let mut next = 0;
    let expired = expired_before.is_some_and(|boundary| batch.max_time < boundary);
    let mut leaves = Vec::with_capacity(offsets.len());
    let mut strays: Vec<&LeafRow> = Vec::new();
    let mut complete = true;
    let mut missing: Vec<i64> = Vec::new();
    let mut expired_count = 0;
    for (index, offset) in offsets.iter().enumerate() {
        let expected = &batch.leaf_prefixes[index * LEAF_PREFIX_BYTES..][..LEAF_PREFIX_BYTES];
        // Rows before this offset that no leaf claims: skipped offsets of the range.
        while next < sorted.len() && sorted[next].offset < *offset {
            strays.push(sorted[next]);
            next += 1;
        }
        let begin = next;
        while next < sorted.len() && sorted[next].offset == *offset {
            next += 1;
        }
        let stored = &sorted[begin..next];
        if let Some(payload_hash) = dead_letters.get(offset) {
            leaves.push(dead_letter_leaf_of(payload_hash));
            for row in stored {
                report.problems.push(Problem::UncoveredEvent {
                    id: row.id,
                    partition,
                    offset: *offset,
                    reason: "claims an offset its batch recorded as dead-lettered".to_owned(),
                });
            }
            continue;
        }
        if stored.is_empty() {
            complete = false;
            if expired {
                expired_count += 1;
            } else {
                missing.push(*offset);
            }
            continue;
        }
        let hashed: Vec<(Hash, &LeafRow)> = stored.iter().map(|row| (row.leaf, *row)).collect();
        let genuine = hashed
            .iter()
            .find(|(leaf, _)| &leaf[..LEAF_PREFIX_BYTES] == expected);
        match genuine {
            Some((leaf, _)) => {
                leaves.push(*leaf);
                report.events.add(true);
                for (other, row) in &hashed {
                    if other != leaf {
                        report.problems.push(Problem::UncoveredEvent {
                            id: row.id,
                            partition,
                            offset: *offset,
                            reason: "is a second, different row at an offset whose event is \
                                     also stored"
                                .to_owned(),
                        });
                    }
                }
            }
            None => {
                complete = false;
                report.events.add(false);
                for (_, row) in &hashed {
                    report.problems.push(Problem::ModifiedEvent {
                        id: row.id,
                        partition,
                        offset: *offset,
                    });
                }
            }
        }
    }
    strays.extend(&sorted[next..]);
    for row in strays {
        report.problems.push(Problem::UncoveredEvent {
            id: row.id,
            partition,
            offset: row.offset,
            reason: "claims an offset its batch records as skipped".to_owned(),
        });
    }
    report.expired_events += expired_count;
    report.events.total += missing.len() as u64;
    for run in runs(&missing) {
        report.problems.push(Problem::DeletedEvents {
            partition,
            first_offset: run.0,
            last_offset: run.1,
            count: (run.1 - run.0 + 1) as u64,
        });
    }
    let mut check = BatchCheck::default();
    if complete {
        if merkle::root(&leaves) == batch.root {
            check.leaves = Some(leaves);
        } else {
            report.problems.push(mismatch(
                "its root does not match its stored rows, although every row matches its leaf \
                 prefix: rows and prefixes were rewritten together"
                    .to_owned(),
            ));
        }
    }
    check.valid = report.problems.len() == problems_before && (check.leaves.is_some() || expired);
    report.batches.add(check.valid);
    check
}

/// Runs of consecutive offsets.
fn runs(offsets: &[i64]) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for offset in offsets {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == *offset => run.1 = *offset,
            _ => runs.push((*offset, *offset)),
        }
    }
    runs
}

/// Reports rows that no chain batch covers (`reason` says why they were selected).
pub fn uncovered(rows: &[StoredRow<'_>], reason: &str, report: &mut Report) {
    for row in rows {
        report.problems.push(Problem::UncoveredEvent {
            id: row.id,
            partition: row.source.partition,
            offset: row.source.offset,
            reason: reason.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use auditlog_store::{RowEncoder, Source, split_stored_rows};

    use super::*;
    use crate::chain::{leaf_prefix, payload_hash};

    const TOPIC: &str = "audit-events";

    /// Rows for offsets `first..=last` (one dead letter at `dead`), and their digest row.
    fn batch(previous: Hash, first: i64, last: i64, dead: Option<i64>) -> (DigestRow, Vec<u8>) {
        let mut encoder = RowEncoder::default();
        let mut bytes = Vec::new();
        let mut leaves = Vec::new();
        let mut prefixes = Vec::new();
        let (mut dead_offsets, mut dead_hashes) = (Vec::new(), Vec::new());
        for offset in first..=last {
            let leaf = if dead == Some(offset) {
                let hash = payload_hash(b"garbage");
                dead_offsets.push(offset);
                dead_hashes.push(hash);
                dead_letter_leaf_of(&hash)
            } else {
                let start = bytes.len();
                let event = auditlog_event::AuditEvent {
                    id: Uuid::from_u128(offset as u128 + 1),
                    ..auditlog_event::testing::sample_event()
                };
                encoder.encode_stored(
                    &event,
                    Source {
                        partition: 0,
                        offset,
                    },
                    &mut bytes,
                );
                event_leaf(&bytes[start..])
            };
            prefixes.extend_from_slice(&leaf_prefix(&leaf));
            leaves.push(leaf);
        }
        let root = merkle::root(&leaves);
        let mut row = DigestRow {
            topic: TOPIC.to_owned(),
            partition: 0,
            first_offset: first,
            last_offset: last,
            num_messages: leaves.len() as u32,
            num_events: (leaves.len() - dead_offsets.len()) as u32,
            skipped_offsets: vec![],
            dead_letter_offsets: dead_offsets,
            dead_letter_hashes: dead_hashes,
            leaf_prefixes: prefixes,
            min_time: 0,
            max_time: 1_000,
            root,
            previous_digest: previous,
            digest: [0; 32],
        };
        row.digest = batch_digest(&previous, &range_of(&row), &root);
        (row, bytes)
    }

    fn head(row: &DigestRow) -> SignedHead {
        SignedHead {
            last_offset: row.last_offset,
            digest: row.digest,
            signed_at: 1,
            key_id: "k".into(),
        }
    }

    #[test]
    fn an_untouched_chain_is_valid_and_every_tampering_is_named() {
        let (first, first_rows) = batch(GENESIS, 0, 9, Some(4));
        let (second, second_rows) = batch(first.digest, 10, 19, None);
        let rows = vec![first.clone(), second.clone()];

        let mut report = Report::default();
        let chain = PartitionChain::walk(0, rows.clone(), &[head(&second)], None, &mut report);
        assert_eq!(chain.batches().count(), 2);
        assert_eq!(chain.spans(), vec![(0, 19)]);
        let stored = split_stored_rows(&first_rows).unwrap();
        assert!(check_batch(&first, &leaf_rows(&stored), None, &mut report).valid);
        let stored_second = split_stored_rows(&second_rows).unwrap();
        assert!(check_batch(&second, &leaf_rows(&stored_second), None, &mut report).valid);
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(
            report.summary(),
            "0/0 checkpoints valid, 2/2 batches valid, 19/19 events valid"
        );

        // A deleted event, a changed one, and a forged copy at an existing offset.
        let mut report = Report::default();
        let mut changed = stored[2].bytes.to_vec();
        let last = changed.len() - 13;
        changed[last] ^= 1;
        let changed_row = split_stored_rows(&changed).unwrap()[0];
        let forged_bytes = stored[4].bytes.to_vec();
        let mut forged = split_stored_rows(&forged_bytes).unwrap()[0];
        forged.source.offset = 6;
        let mut tampered: Vec<StoredRow<'_>> = stored
            .iter()
            .copied()
            .filter(|row| row.source.offset != 1 && row.source.offset != 2)
            .collect();
        tampered.push(changed_row);
        tampered.push(forged);
        assert!(!check_batch(&first, &leaf_rows(&tampered), None, &mut report).valid);
        assert_eq!(
            report.problems,
            vec![
                Problem::ModifiedEvent {
                    id: stored[2].id,
                    partition: 0,
                    offset: 2
                },
                Problem::UncoveredEvent {
                    id: stored[4].id,
                    partition: 0,
                    offset: 6,
                    reason: "is a second, different row at an offset whose event is also stored"
                        .into()
                },
                Problem::DeletedEvents {
                    partition: 0,
                    first_offset: 1,
                    last_offset: 1,
                    count: 1
                },
            ]
        );

        // A rewritten digest row, and a deleted one in the middle of the chain.
        let mut rewritten = first.clone();
        rewritten.root[0] ^= 1;
        let mut report = Report::default();
        PartitionChain::walk(
            0,
            vec![rewritten, second.clone()],
            &[head(&second)],
            None,
            &mut report,
        );
        assert!(matches!(
            report.problems[0],
            Problem::BatchMismatch {
                first_offset: 0,
                ..
            }
        ));
        let (third, _) = batch(second.digest, 20, 29, None);
        let mut report = Report::default();
        let chain = PartitionChain::walk(
            0,
            vec![first.clone(), third.clone()],
            &[head(&first), head(&third)],
            None,
            &mut report,
        );
        assert_eq!(
            chain.batches().count(),
            2,
            "the walk resumes below the break"
        );
        assert!(
            matches!(
                report.problems[..],
                [Problem::BrokenLink {
                    first_offset: 20,
                    ..
                }]
            ),
            "{:?}",
            report.problems
        );

        // Expired rather than deleted when the batch lies before the retention boundary.
        let mut report = Report::default();
        assert!(check_batch(&first, &[], Some(2_000), &mut report).valid);
        assert_eq!((report.expired_events, report.problems.len()), (9, 0));
    }
}
