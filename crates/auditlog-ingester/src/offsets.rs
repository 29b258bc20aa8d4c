//! Which offsets may be committed: the contiguous prefix of finished batches, per partition.
//!
//! Batches of one partition may finish out of order (several inserts run at once). A later
//! batch finishing never lets the commit skip an earlier one that has not: the committed
//! offset only ever moves past batches that are all finished, in consumption order.

use std::collections::{HashMap, VecDeque};

/// One sealed batch's place in its partition's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    first_offset: i64,
    last_offset: i64,
    finished: bool,
}

/// Tracks sealed and finished batches and yields the next committable offset per partition.
#[derive(Debug, Default)]
pub(crate) struct CommitTracker {
    partitions: HashMap<i32, VecDeque<Slot>>,
}

impl CommitTracker {
    /// Records a sealed batch. Batches of one partition must be registered in offset order.
    pub(crate) fn register(&mut self, partition: i32, first_offset: i64, last_offset: i64) {
        let slots = self.partitions.entry(partition).or_default();
        debug_assert!(
            slots
                .back()
                .is_none_or(|last| last.last_offset < first_offset),
            "batches of partition {partition} registered out of order"
        );
        slots.push_back(Slot {
            first_offset,
            last_offset,
            finished: false,
        });
    }

    /// Marks a batch finished. Returns the offset to commit (the next offset to consume) if
    /// the contiguous finished prefix grew, or `None` if it did not (or the batch is unknown,
    /// e.g. its partition was revoked meanwhile).
    pub(crate) fn finish(&mut self, partition: i32, first_offset: i64) -> Option<i64> {
        let slots = self.partitions.get_mut(&partition)?;
        let slot = slots
            .iter_mut()
            .find(|slot| slot.first_offset == first_offset)?;
        slot.finished = true;
        let mut committable = None;
        while let Some(front) = slots.front() {
            if !front.finished {
                break;
            }
            committable = Some(front.last_offset + 1);
            slots.pop_front();
        }
        committable
    }

    /// Batches of `partition` that are sealed but not finished.
    pub(crate) fn num_in_flight(&self, partition: i32) -> usize {
        self.partitions.get(&partition).map_or(0, VecDeque::len)
    }

    /// Batches of every partition that are sealed but not finished.
    pub(crate) fn total_in_flight(&self) -> usize {
        self.partitions.values().map(VecDeque::len).sum()
    }

    /// Forgets a partition (revoked): later completions of its batches are ignored.
    pub(crate) fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_waits_for_the_earliest_unfinished_batch() {
        let mut tracker = CommitTracker::default();
        tracker.register(0, 0, 9);
        tracker.register(0, 10, 19);
        tracker.register(0, 20, 29);
        // A later batch succeeding never lets the commit skip a failed or slow earlier one.
        assert_eq!(tracker.finish(0, 10), None);
        assert_eq!(tracker.finish(0, 20), None);
        assert_eq!(tracker.finish(0, 0), Some(30));
        assert_eq!(tracker.num_in_flight(0), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = CommitTracker::default();
        tracker.register(0, 0, 4);
        tracker.register(1, 100, 104);
        assert_eq!(tracker.finish(1, 100), Some(105));
        assert_eq!(tracker.total_in_flight(), 1);
        assert_eq!(tracker.finish(0, 0), Some(5));
    }

    #[test]
    fn gaps_in_offsets_do_not_block_the_commit() {
        // Transaction markers and compaction leave holes; contiguity is in batch order.
        let mut tracker = CommitTracker::default();
        tracker.register(3, 0, 4);
        tracker.register(3, 7, 9);
        assert_eq!(tracker.finish(3, 0), Some(5));
        assert_eq!(tracker.finish(3, 7), Some(10));
    }

    #[test]
    fn completions_of_a_forgotten_partition_are_ignored() {
        let mut tracker = CommitTracker::default();
        tracker.register(2, 0, 9);
        tracker.forget(2);
        assert_eq!(tracker.finish(2, 0), None);
        assert_eq!(tracker.finish(9, 0), None);
    }
}
