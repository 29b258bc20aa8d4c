//! Per-partition batching with deterministic boundaries.
//!
//! ```text
//!   message(offset) ──▶ PartitionBatcher ──▶ sealed Batch [first_offset ..= last_offset]
//!                         ▲        cut at max rows / max bytes / max age,
//!                         │        or exactly where a recorded plan says
//!                 plans (intents recorded before earlier inserts)
//! ```
//!
//! A batch's insert deduplication token is derived from its topic, partition and offset
//! range, so re-sending the *same* range is a no-op in ClickHouse. Rows and bytes are
//! deterministic cuts, but the age cut is not: after a crash, the backlog would be cut
//! elsewhere. So every batch's range is recorded (an "intent", see `intent.rs`) before its
//! insert, and a partition that is picked up again first replays the recorded ranges exactly.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_integrity::{
    BatchRange, Hash, LEAF_PREFIX_BYTES, batch_digest, dead_letter_leaf_of, event_leaf,
    leaf_prefix, merkle, payload_hash,
};
use auditlog_store::DigestRow;

use crate::dlq::letter::Poison;
use crate::metrics as names;
use crate::row_buffers::{RowBuffers, SealedRows};

/// When a batch is sealed. The limits are checked after each message is added, so a batch
/// can exceed `max_bytes` by at most one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Seal once this many messages (rows and poison) are in the batch.
    pub max_rows: usize,
    /// Seal once the encoded rows reach this many bytes.
    pub max_bytes: usize,
    /// Seal a non-empty batch this long after its first message arrived.
    pub max_age: Duration,
}

impl Default for BatchLimits {
    /// 100k rows or 16 MiB or 1 s: ClickHouse wants few, large inserts (about one per second
    /// per table); 16 MiB keeps a few batches per partition well inside the memory budget.
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_bytes: 16 * 1024 * 1024,
            max_age: Duration::from_secs(1),
        }
    }
}

/// A recorded batch range that must be reproduced exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlannedRange {
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    /// The digest recorded with the range; `None` for an intent from before digests
    /// (`ingest_batches`), whose replay records its digest then.
    pub(crate) digest: Option<Hash>,
}

/// A sealed batch: RowBinary rows plus the poison messages of the same offset range.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The range the deduplication token names (a replayed plan's range, verbatim).
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    /// Whether this range and its digest were already recorded (a replay).
    pub(crate) planned: bool,
    /// The batch's digest row, recorded before its insert.
    pub(crate) digest: DigestRow,
    pub(crate) rows: SealedRows,
    pub(crate) num_rows: usize,
    pub(crate) poison: Vec<Poison>,
    /// Event times (µs since the epoch) of the rows, for the freshness histogram.
    pub(crate) event_times_micros: Vec<i64>,
}

impl Batch {
    /// The `insert_deduplication_token`: the same range always gives the same token.
    pub(crate) fn dedup_token(&self) -> String {
        format!(
            "auditlog:{}:{}:{}-{}",
            self.topic, self.partition, self.first_offset, self.last_offset
        )
    }
}

#[derive(Debug)]
struct OpenBatch {
    first_offset: i64,
    last_offset: i64,
    plan: Option<PlannedRange>,
    opened_at: Instant,
    rows: Vec<u8>,
    num_rows: usize,
    poison: Vec<Poison>,
    event_times_micros: Vec<i64>,
    /// One per message, in offset order: the digest's leaves.
    leaves: Vec<Hash>,
    leaf_offsets: Vec<i64>,
    dead_letter_hashes: Vec<Hash>,
}

/// Builds the batches of one partition.
#[derive(Debug)]
pub(crate) struct PartitionBatcher {
    topic: Arc<str>,
    partition: i32,
    limits: BatchLimits,
    plans: VecDeque<PlannedRange>,
    open: Option<OpenBatch>,
    /// The offset of the last message added, to notice a rewind (seek or reassignment).
    last_seen_offset: Option<i64>,
    /// The digest of the partition's last sealed batch: the next one chains after it.
    chain_head: Hash,
    /// Where the rows' buffers come from and go back to.
    buffers: RowBuffers,
    /// The last sealed batch's number of messages: the next one is likely alike, so its
    /// per-message vectors are sized for it up front instead of growing by copies.
    last_num_messages: usize,
}

impl PartitionBatcher {
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        limits: BatchLimits,
        plans: Vec<PlannedRange>,
        chain_head: Hash,
    ) -> Self {
        let mut plans = plans;
        plans.sort_by_key(|plan| plan.first_offset);
        Self {
            topic,
            partition,
            limits,
            plans: plans.into(),
            open: None,
            last_seen_offset: None,
            chain_head,
            buffers: RowBuffers::default(),
            last_num_messages: 0,
        }
    }

    /// Takes row buffers from (and gives them back to) `buffers`, shared with other batchers.
    pub(crate) fn with_row_buffers(mut self, buffers: RowBuffers) -> Self {
        self.buffers = buffers;
        self
    }

    /// The offset of the last message added, if any.
    pub(crate) fn last_seen_offset(&self) -> Option<i64> {
        self.last_seen_offset
    }

    /// Adds a row. `encode` appends its RowBinary bytes. Returns the batches this sealed:
    /// possibly the previous one (a plan ended before this offset) and this one.
    pub(crate) fn push_row(
        &mut self,
        offset: i64,
        event_time_micros: i64,
        encode: impl FnOnce(&mut Vec<u8>),
        now: Instant,
    ) -> Vec<Batch> {
        let mut sealed = self.prepare(offset, now);
        let open = self.open.as_mut().expect("prepare opened a batch");
        let start = open.rows.len();
        encode(&mut open.rows);
        open.leaves.push(event_leaf(&open.rows[start..]));
        open.leaf_offsets.push(offset);
        open.num_rows += 1;
        open.event_times_micros.push(event_time_micros);
        sealed.extend(self.seal_if_full(offset));
        sealed
    }

    /// Adds a poison message (it takes its offset in the range, but no row).
    pub(crate) fn push_poison(&mut self, poison: Poison, now: Instant) -> Vec<Batch> {
        let offset = poison.offset;
        let mut sealed = self.prepare(offset, now);
        let open = self.open.as_mut().expect("prepare opened a batch");
        let hash = payload_hash(poison.payload.as_deref().unwrap_or_default());
        open.leaves.push(dead_letter_leaf_of(&hash));
        open.leaf_offsets.push(offset);
        open.dead_letter_hashes.push(hash);
        open.poison.push(poison);
        sealed.extend(self.seal_if_full(offset));
        sealed
    }

    /// Seals the open batch if it is older than `max_age`. A replayed plan is never cut by
    /// age: its range must come out exactly as recorded.
    pub(crate) fn seal_if_expired(&mut self, now: Instant) -> Option<Batch> {
        let open = self.open.as_ref()?;
        if open.plan.is_some() || now.duration_since(open.opened_at) < self.limits.max_age {
            return None;
        }
        self.seal()
    }

    /// Whether a batch is open (one that only its age may seal, or any other).
    pub(crate) fn has_open(&self) -> bool {
        self.open.is_some()
    }

    /// Seals whatever is open (shutdown, revocation). A replayed plan that has not reached
    /// its recorded end is dropped instead: written under its recorded range it would claim
    /// offsets it never read, so it stays uncommitted and the next owner replays it whole.
    pub(crate) fn seal_now(&mut self) -> Option<Batch> {
        let open = self.open.as_ref()?;
        if let Some(plan) = open.plan
            && open.last_offset < plan.last_offset
        {
            self.open = None;
            return None;
        }
        self.seal()
    }

    fn prepare(&mut self, offset: i64, now: Instant) -> Vec<Batch> {
        debug_assert!(
            self.last_seen_offset.is_none_or(|last| last < offset),
            "offsets of a partition must increase; rewinds are handled by the caller"
        );
        self.last_seen_offset = Some(offset);
        let mut sealed = Vec::new();
        if let Some(open) = &self.open
            && let Some(plan) = open.plan
            && offset > plan.last_offset
        {
            // The plan's last offsets are gone (compaction); close it where it should end.
            sealed.extend(self.seal());
        }
        if self.open.is_none() {
            while self
                .plans
                .front()
                .is_some_and(|plan| plan.last_offset < offset)
            {
                self.plans.pop_front();
            }
            let plan = self
                .plans
                .front()
                .copied()
                .filter(|plan| plan.first_offset <= offset);
            if plan.is_some() {
                self.plans.pop_front();
            }
            // A little over the last batch's, never past what a batch may hold.
            let num_messages = self.last_num_messages;
            let num_messages = (num_messages + num_messages / 8).min(self.limits.max_rows);
            self.open = Some(OpenBatch {
                first_offset: plan.map_or(offset, |plan| plan.first_offset),
                last_offset: offset,
                plan,
                opened_at: now,
                rows: self.buffers.take(self.limits.max_bytes),
                num_rows: 0,
                poison: Vec::new(),
                event_times_micros: Vec::with_capacity(num_messages),
                leaves: Vec::with_capacity(num_messages),
                leaf_offsets: Vec::with_capacity(num_messages),
                dead_letter_hashes: Vec::new(),
            });
        }
        if let Some(open) = self.open.as_mut() {
            open.last_offset = offset;
        }
        sealed
    }

    fn seal_if_full(&mut self, offset: i64) -> Option<Batch> {
        let open = self.open.as_ref()?;
        let full = match open.plan {
            Some(plan) => offset >= plan.last_offset,
            None => {
                open.num_rows + open.poison.len() >= self.limits.max_rows
                    || open.rows.len() >= self.limits.max_bytes
            }
        };
        if full { self.seal() } else { None }
    }

    fn seal(&mut self) -> Option<Batch> {
        let open = self.open.take()?;
        self.last_num_messages = open.leaves.len();
        let last_offset = open.plan.map_or(open.last_offset, |plan| plan.last_offset);
        let digest = self.digest(&open, last_offset);
        let recorded = open.plan.and_then(|plan| plan.digest);
        self.chain_head = match recorded {
            Some(recorded) if recorded != digest.digest => {
                // The stored rows are the first attempt's, and so is the recorded digest:
                // keep chaining from that one. A replay that hashes differently means the
                // encoding is not deterministic, which the verifier would report.
                metrics::counter!(names::DIGEST_MISMATCHES).increment(1);
                tracing::error!(
                    partition = self.partition,
                    first_offset = open.first_offset,
                    last_offset,
                    "a replayed batch hashes differently from its recorded digest"
                );
                recorded
            }
            _ => digest.digest,
        };
        Some(Batch {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
            first_offset: open.first_offset,
            last_offset,
            planned: recorded.is_some(),
            digest,
            rows: self.buffers.seal(open.rows),
            num_rows: open.num_rows,
            poison: open.poison,
            event_times_micros: open.event_times_micros,
        })
    }

    /// The digest row of a batch being sealed, chained after the partition's head.
    fn digest(&self, open: &OpenBatch, last_offset: i64) -> DigestRow {
        let root = merkle::root(&open.leaves);
        let range = BatchRange {
            topic: self.topic.to_string(),
            partition: self.partition,
            first_offset: open.first_offset,
            last_offset,
            count: u32::try_from(open.leaves.len()).unwrap_or(u32::MAX),
        };
        let digest = batch_digest(&self.chain_head, &range, &root);
        let mut skipped_offsets = Vec::new();
        let mut expected = open.first_offset;
        for offset in open.leaf_offsets.iter().copied().chain([last_offset + 1]) {
            skipped_offsets.extend(expected..offset);
            expected = offset + 1;
        }
        let mut leaf_prefixes = Vec::with_capacity(open.leaves.len() * LEAF_PREFIX_BYTES);
        for leaf in &open.leaves {
            leaf_prefixes.extend_from_slice(&leaf_prefix(leaf));
        }
        DigestRow {
            topic: range.topic,
            partition: self.partition,
            first_offset: open.first_offset,
            last_offset,
            num_messages: range.count,
            num_events: u32::try_from(open.num_rows).unwrap_or(u32::MAX),
            skipped_offsets,
            dead_letter_offsets: open.poison.iter().map(|poison| poison.offset).collect(),
            dead_letter_hashes: open.dead_letter_hashes.clone(),
            leaf_prefixes,
            min_time: open.event_times_micros.iter().copied().min().unwrap_or(0),
            max_time: open.event_times_micros.iter().copied().max().unwrap_or(0),
            root,
            previous_digest: self.chain_head,
            digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use auditlog_integrity::GENESIS;

    use super::*;

    fn limits(max_rows: usize) -> BatchLimits {
        BatchLimits {
            max_rows,
            max_bytes: usize::MAX,
            max_age: Duration::from_secs(1),
        }
    }

    fn batcher(max_rows: usize, plans: Vec<PlannedRange>) -> PartitionBatcher {
        PartitionBatcher::new(Arc::from("t"), 0, limits(max_rows), plans, GENESIS)
    }

    fn push(batcher: &mut PartitionBatcher, offset: i64, now: Instant) -> Vec<Batch> {
        batcher.push_row(offset, 0, |rows| rows.push(offset as u8), now)
    }

    fn ranges(batches: &[Batch]) -> Vec<(i64, i64)> {
        batches
            .iter()
            .map(|batch| (batch.first_offset, batch.last_offset))
            .collect()
    }

    #[test]
    fn seals_at_max_rows() {
        let now = Instant::now();
        let mut batcher = batcher(3, vec![]);
        let mut sealed = Vec::new();
        for offset in 0..7 {
            sealed.extend(push(&mut batcher, offset, now));
        }
        assert_eq!(ranges(&sealed), vec![(0, 2), (3, 5)]);
        assert_eq!(*sealed[0].rows, [0, 1, 2]);
        assert_eq!(sealed[0].dedup_token(), "auditlog:t:0:0-2");
        assert_eq!(ranges(&[batcher.seal_now().unwrap()]), vec![(6, 6)]);
    }

    #[test]
    fn seals_at_max_bytes() {
        let now = Instant::now();
        let mut batcher = PartitionBatcher::new(
            Arc::from("t"),
            0,
            BatchLimits {
                max_rows: 1000,
                max_bytes: 10,
                max_age: Duration::from_secs(1),
            },
            vec![],
            GENESIS,
        );
        let mut sealed = Vec::new();
        for offset in 0..4 {
            sealed.extend(batcher.push_row(offset, 0, |rows| rows.extend([0; 4]), now));
        }
        assert_eq!(ranges(&sealed), vec![(0, 2)]);
    }

    #[test]
    fn seals_by_age_only_when_unplanned() {
        let start = Instant::now();
        let mut batcher = batcher(100, vec![]);
        push(&mut batcher, 0, start);
        assert!(
            batcher
                .seal_if_expired(start + Duration::from_millis(999))
                .is_none()
        );
        let sealed = batcher
            .seal_if_expired(start + Duration::from_secs(1))
            .unwrap();
        assert_eq!((sealed.first_offset, sealed.last_offset), (0, 0));
        assert!(!sealed.planned);
    }

    #[test]
    fn replays_recorded_ranges_exactly_then_cuts_normally() {
        // First run cut by age at 0..=4 and 5..=6; after a crash the backlog replays them.
        let plans = vec![
            PlannedRange {
                first_offset: 0,
                last_offset: 4,
                digest: Some([7; 32]),
            },
            PlannedRange {
                first_offset: 5,
                last_offset: 6,
                digest: Some([7; 32]),
            },
        ];
        let now = Instant::now();
        let mut batcher = batcher(3, plans);
        let mut sealed = Vec::new();
        for offset in 0..12 {
            sealed.extend(push(&mut batcher, offset, now));
            if offset < 7 {
                // Age never cuts a replayed plan.
                assert!(
                    batcher
                        .seal_if_expired(now + Duration::from_secs(60))
                        .is_none()
                );
            }
        }
        let planned: Vec<bool> = sealed.iter().map(|batch| batch.planned).collect();
        assert_eq!(ranges(&sealed)[..3], [(0, 4), (5, 6), (7, 9)]);
        assert_eq!(planned[..3], [true, true, false]);
    }

    #[test]
    fn resuming_inside_a_plan_keeps_its_range_for_the_token() {
        // Committed offset 2 falls inside the recorded range 0..=4 (offsets 0-1 were deleted).
        let plans = vec![PlannedRange {
            first_offset: 0,
            last_offset: 4,
            digest: None,
        }];
        let now = Instant::now();
        let mut batcher = batcher(100, plans);
        let mut sealed = Vec::new();
        for offset in 2..5 {
            sealed.extend(push(&mut batcher, offset, now));
        }
        assert_eq!(ranges(&sealed), vec![(0, 4)]);
    }

    #[test]
    fn a_plan_whose_end_is_missing_closes_at_the_next_offset() {
        let plans = vec![PlannedRange {
            first_offset: 0,
            last_offset: 4,
            digest: None,
        }];
        let now = Instant::now();
        let mut batcher = batcher(100, plans);
        let mut sealed = Vec::new();
        for offset in [0, 1, 2, 8] {
            sealed.extend(push(&mut batcher, offset, now));
        }
        assert_eq!(ranges(&sealed), vec![(0, 4)]);
        assert_eq!(sealed[0].num_rows, 3);
    }

    #[test]
    fn poison_takes_a_place_in_the_range() {
        let now = Instant::now();
        let mut batcher = batcher(3, vec![]);
        push(&mut batcher, 0, now);
        let poison = Poison {
            offset: 1,
            key: None,
            payload: Some(vec![1, 2, 3]),
            timestamp_millis: None,
            replay: None,
            kind: "decode",
            reason: "too short".into(),
        };
        assert!(batcher.push_poison(poison, now).is_empty());
        let sealed = push(&mut batcher, 2, now);
        assert_eq!(ranges(&sealed), vec![(0, 2)]);
        assert_eq!(sealed[0].num_rows, 2);
        assert_eq!(sealed[0].digest.num_messages, 3);
        assert_eq!(sealed[0].digest.dead_letter_offsets, vec![1]);
    }

    #[test]
    fn digests_chain_and_record_what_the_verifier_needs() {
        let now = Instant::now();
        let mut batcher = batcher(3, vec![]);
        let mut sealed = Vec::new();
        // Offset 4 never arrives (a transaction marker): the second batch records it.
        for offset in [0, 1, 2, 3, 5, 6] {
            sealed.extend(push(&mut batcher, offset, now));
        }
        let (first, second) = (&sealed[0].digest, &sealed[1].digest);
        assert_eq!(first.previous_digest, GENESIS);
        assert_eq!(second.previous_digest, first.digest);
        assert_eq!((second.first_offset, second.last_offset), (3, 6));
        assert_eq!(second.skipped_offsets, vec![4]);
        assert_eq!(first.leaf_prefixes.len(), 3 * 8);
        let leaves: Vec<Hash> = [0_u8, 1, 2].iter().map(|row| event_leaf(&[*row])).collect();
        assert_eq!(first.root, merkle::root(&leaves));
        let range = BatchRange {
            topic: "t".into(),
            partition: 0,
            first_offset: 0,
            last_offset: 2,
            count: 3,
        };
        assert_eq!(first.digest, batch_digest(&GENESIS, &range, &first.root));
    }

    #[test]
    fn a_replay_cut_short_is_not_written() {
        let plans = vec![PlannedRange {
            first_offset: 0,
            last_offset: 4,
            digest: Some([1; 32]),
        }];
        let now = Instant::now();
        let mut batcher = batcher(100, plans);
        for offset in 0..3 {
            assert!(push(&mut batcher, offset, now).is_empty());
        }
        assert!(batcher.seal_now().is_none());
        assert!(!batcher.has_open());
    }
}
