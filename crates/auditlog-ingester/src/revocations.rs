//! Revocations the rebalance callback stopped waiting for, shared by the poll thread and
//! the coordinator.
//!
//! ```text
//!  callback: Revoked #7 ──▶ coordinator (flushing; ClickHouse is down)
//!            … revoke_timeout passes ──▶ given_up([3], #7) ──▶ returns: partition 3 may
//!                                                                 go to another member now
//!  coordinator: a batch of partition 3 finishes late ──▶ abandoned(3)? yes ──▶ no commit,
//!               no chain head signed; Revoked #7 handled ──▶ handled(#7): the mark is spent
//! ```
//!
//! A batch that finishes after its partition has left may have been written after the new
//! owner read the batch intents, so the new owner cuts the same offsets into batches of its
//! own: a head signed for the late batch would be a second chain over those offsets, which
//! the verifier rightly calls rewritten history. The mark is made before the callback
//! returns, so before the group can hand the partition on; the coordinator checks it for
//! every batch that finishes until it has handled that revocation (after which the
//! partition's generation has moved on and late batches are ignored anyway).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// See the module's notes. Revocations are numbered in the order the callback sees them,
/// which is the order the coordinator receives them in.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    next: AtomicU64,
    /// Partition → the newest revocation of it that was given up.
    given_up: Mutex<HashMap<i32, u64>>,
    /// The newest revocation the coordinator has finished handling.
    handled: AtomicU64,
}

impl Revocations {
    fn given_up_map(&self) -> MutexGuard<'_, HashMap<i32, u64>> {
        // The map is consistent whatever panicked while holding it.
        self.given_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Numbers a new revocation (from 1).
    pub(crate) fn begin(&self) -> u64 {
        self.next.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The callback stops waiting for revocation `number` of `partitions`.
    pub(crate) fn give_up(&self, partitions: &[i32], number: u64) {
        let mut given_up = self.given_up_map();
        for partition in partitions {
            given_up.insert(*partition, number);
        }
    }

    /// Whether the callback gave `partition` up in a revocation the coordinator has not
    /// finished handling: what finishes for it now must be neither committed nor signed.
    pub(crate) fn abandoned(&self, partition: i32) -> bool {
        let handled = self.handled.load(Ordering::Acquire);
        self.given_up_map()
            .get(&partition)
            .is_some_and(|number| *number > handled)
    }

    /// The coordinator has handled revocation `number` (and so every one before it).
    pub(crate) fn handled(&self, number: u64) {
        self.handled.fetch_max(number, Ordering::AcqRel);
        self.given_up_map().retain(|_, given_up| *given_up > number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_up_partition_is_abandoned_until_its_revocation_is_handled() {
        let revocations = Revocations::default();
        let first = revocations.begin();
        let second = revocations.begin();
        assert_eq!((first, second), (1, 2));
        assert!(!revocations.abandoned(3));
        revocations.give_up(&[3, 4], first);
        assert!(revocations.abandoned(3) && revocations.abandoned(4));
        assert!(!revocations.abandoned(5));
        revocations.handled(first);
        assert!(!revocations.abandoned(3), "its generation has moved on");
    }

    #[test]
    fn giving_up_after_the_coordinator_answered_leaves_no_lasting_mark() {
        // The callback's deadline passes just as the answer arrives: the coordinator has
        // handled the revocation, so the partition, if assigned back, is not held up.
        let revocations = Revocations::default();
        let number = revocations.begin();
        revocations.handled(number);
        revocations.give_up(&[3], number);
        assert!(!revocations.abandoned(3));
        let later = revocations.begin();
        revocations.give_up(&[3], later);
        assert!(revocations.abandoned(3));
    }
}
