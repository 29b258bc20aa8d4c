//! Judging one chain batch against its stored rows: each offset's leaf against the prefix
//! the batch recorded, then the whole root.

use std::collections::{HashMap, HashSet};

use auditlog_store::{DigestRow, StoredRow};
use uuid::Uuid;

use super::report::{Problem, Report};
use crate::chain::{LEAF_PREFIX_BYTES, dead_letter_leaf_of, event_leaf};
use crate::{Hash, merkle};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::GENESIS;
    use crate::verify::fixtures::{batch, changed, stored};

    fn judge(
        digest: &DigestRow,
        rows: &[LeafRow],
        expired_before: Option<i64>,
    ) -> (BatchCheck, Report) {
        let mut report = Report::default();
        let check = check_batch(digest, rows, expired_before, &mut report);
        (check, report)
    }

    #[test]
    fn an_untouched_batch_with_dead_letters_and_skipped_offsets_is_valid() {
        let batch = batch(&GENESIS, 0, 9, &[4], &[7]);
        let mut rows = batch.rows.clone();
        rows.reverse();
        let (check, report) = judge(&batch.digest, &rows, None);
        assert!(check.valid);
        assert_eq!(
            check.leaves.map(|leaves| merkle::root(&leaves)),
            Some(batch.digest.root)
        );
        assert_eq!(report.problems, vec![]);
        assert_eq!((report.events.valid, report.events.total), (8, 8));
        assert_eq!((report.batches.valid, report.batches.total), (1, 1));
    }

    #[test]
    fn leaf_rows_hash_the_stored_bytes_as_clickhouse_returns_them() {
        use auditlog_store::{RowEncoder, Source, split_stored_rows};

        let mut encoder = RowEncoder::default();
        let mut bytes = Vec::new();
        let mut leaves = Vec::new();
        for offset in 0..3 {
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
            leaves.push(event_leaf(&bytes[start..]));
        }
        let mut digest = batch(&GENESIS, 0, 2, &[], &[]).digest;
        digest.leaf_prefixes = leaves.iter().flat_map(crate::leaf_prefix).collect();
        digest.root = merkle::root(&leaves);

        let stored = split_stored_rows(&bytes).unwrap();
        let rows = leaf_rows(&stored);
        assert_eq!(
            rows.iter().map(|row| row.offset).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let (check, report) = judge(&digest, &rows, None);
        assert!(check.valid, "{:?}", report.problems);
    }

    #[test]
    fn an_identical_copy_of_a_row_is_one_event() {
        let batch = batch(&GENESIS, 0, 4, &[], &[]);
        let mut rows = batch.rows.clone();
        rows.push(stored(2));
        let (check, report) = judge(&batch.digest, &rows, None);
        assert!(check.valid, "{:?}", report.problems);
        assert_eq!(report.events.total, 5);
    }

    #[test]
    fn deleted_events_are_named_as_runs_of_offsets() {
        let batch = batch(&GENESIS, 0, 9, &[], &[]);
        let rows: Vec<LeafRow> = batch
            .rows
            .iter()
            .copied()
            .filter(|row| ![3, 4, 8].contains(&row.offset))
            .collect();
        let (check, report) = judge(&batch.digest, &rows, None);
        assert!(!check.valid);
        assert_eq!(check.leaves, None);
        assert_eq!(
            report.problems,
            vec![
                Problem::DeletedEvents {
                    partition: 0,
                    first_offset: 3,
                    last_offset: 4,
                    count: 2
                },
                Problem::DeletedEvents {
                    partition: 0,
                    first_offset: 8,
                    last_offset: 8,
                    count: 1
                },
            ]
        );
        assert_eq!((report.events.valid, report.events.total), (7, 10));
        assert_eq!(
            report.problems[0].to_string(),
            "deleted: 2 event(s) at partition 0 offsets 3..=4"
        );
    }

    #[test]
    fn events_of_a_batch_wholly_before_the_retention_boundary_are_expired_not_deleted() {
        // The fixture's events lie at 0..=1000 µs.
        let batch = batch(&GENESIS, 0, 9, &[2], &[]);
        let (check, report) = judge(&batch.digest, &[], Some(1_001));
        assert!(check.valid);
        assert_eq!(report.problems, vec![]);
        assert_eq!(
            report.expired_events, 9,
            "the dead letter is no expired event"
        );
        assert_eq!(report.events.total, 0);

        // A boundary inside the batch's time range: its missing events were deleted.
        let (check, report) = judge(&batch.digest, &[], Some(1_000));
        assert!(!check.valid);
        assert_eq!(report.expired_events, 0);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(matches!(
            report.problems[0],
            Problem::DeletedEvents {
                first_offset: 0,
                last_offset: 1,
                ..
            }
        ));
    }

    #[test]
    fn a_changed_event_is_modified() {
        let batch = batch(&GENESIS, 0, 4, &[], &[]);
        let mut rows = batch.rows.clone();
        rows[3] = changed(3);
        let (check, report) = judge(&batch.digest, &rows, None);
        assert!(!check.valid);
        assert_eq!(
            report.problems,
            vec![Problem::ModifiedEvent {
                id: stored(3).id,
                partition: 0,
                offset: 3
            }]
        );
        assert_eq!((report.events.valid, report.events.total), (4, 5));
    }

    #[test]
    fn a_different_row_beside_the_genuine_one_is_forged_at_an_occupied_offset() {
        let batch = batch(&GENESIS, 0, 4, &[], &[]);
        let forged = LeafRow {
            id: Uuid::from_u128(99),
            ..changed(1)
        };
        let mut rows = batch.rows.clone();
        rows.insert(0, forged);
        let (check, report) = judge(&batch.digest, &rows, None);
        assert!(!check.valid);
        assert_eq!(
            report.problems,
            vec![Problem::UncoveredEvent {
                id: forged.id,
                partition: 0,
                offset: 1,
                reason: "is a second, different row at an offset whose event is also stored"
                    .to_owned(),
            }]
        );
        assert_eq!(
            (report.events.valid, report.events.total),
            (5, 5),
            "the genuine row holds"
        );
    }

    #[test]
    fn a_row_at_a_skipped_or_dead_lettered_offset_is_forged() {
        let batch = batch(&GENESIS, 0, 5, &[2], &[4]);
        let mut rows = batch.rows.clone();
        rows.push(stored(2));
        rows.push(stored(4));
        let (check, report) = judge(&batch.digest, &rows, None);
        assert!(!check.valid);
        let reasons: Vec<(i64, &str)> = report
            .problems
            .iter()
            .map(|problem| match problem {
                Problem::UncoveredEvent { offset, reason, .. } => (*offset, reason.as_str()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                (2, "claims an offset its batch recorded as dead-lettered"),
                (4, "claims an offset its batch records as skipped"),
            ]
        );
    }

    #[test]
    fn a_digest_row_whose_counts_and_prefixes_disagree_was_rewritten() {
        let mut batch = batch(&GENESIS, 0, 4, &[], &[]);
        batch.digest.leaf_prefixes.truncate(LEAF_PREFIX_BYTES * 4);
        let (check, report) = judge(&batch.digest, &batch.rows, None);
        assert!(!check.valid);
        assert!(
            matches!(&report.problems[..], [Problem::BatchMismatch { reason, .. }] if reason.contains("leaf prefixes disagree")),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn rows_and_prefixes_rewritten_together_do_not_match_the_root() {
        let mut batch = batch(&GENESIS, 0, 4, &[], &[]);
        let forged = changed(2);
        batch.rows[2] = forged;
        batch.digest.leaf_prefixes[2 * LEAF_PREFIX_BYTES..][..LEAF_PREFIX_BYTES]
            .copy_from_slice(&forged.leaf[..LEAF_PREFIX_BYTES]);
        let (check, report) = judge(&batch.digest, &batch.rows, None);
        assert!(!check.valid);
        assert_eq!(check.leaves, None);
        assert!(
            matches!(&report.problems[..], [Problem::BatchMismatch { reason, .. }] if reason.contains("its root does not match")),
            "{:?}",
            report.problems
        );
    }
}
