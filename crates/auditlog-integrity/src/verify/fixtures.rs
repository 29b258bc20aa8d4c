//! In-memory evidence for the judgement's tests: batches of made-up rows, hashed, rooted and
//! chained by the crate's own functions, and heads as a checkpoint would sign them.

use auditlog_store::DigestRow;
use uuid::Uuid;

use super::{LeafRow, SignedHead, range_of};
use crate::chain::{
    GENESIS, batch_digest, dead_letter_leaf_of, event_leaf, leaf_prefix, payload_hash,
};
use crate::{Hash, merkle};

/// The topic every fixture is about.
pub(super) const TOPIC: &str = "audit-events";

/// The stored row at `offset` of partition 0, as the ingester wrote it.
pub(super) fn stored(offset: i64) -> LeafRow {
    LeafRow {
        id: Uuid::from_u128(offset as u128 + 1),
        partition: 0,
        offset,
        leaf: event_leaf(format!("event at offset {offset}").as_bytes()),
    }
}

/// The same row with other contents.
pub(super) fn changed(offset: i64) -> LeafRow {
    LeafRow {
        leaf: event_leaf(format!("changed event at offset {offset}").as_bytes()),
        ..stored(offset)
    }
}

/// One batch: its digest row and its stored rows.
#[derive(Debug, Clone)]
pub(super) struct Batch {
    pub(super) digest: DigestRow,
    pub(super) rows: Vec<LeafRow>,
}

/// A batch of partition 0 over `first..=last` after `previous`: `dead` offsets were
/// dead-lettered, `skipped` had no message, every other offset is a stored event. Its events
/// lie at times 0..=1000 µs.
pub(super) fn batch(
    previous: &Hash,
    first: i64,
    last: i64,
    dead: &[i64],
    skipped: &[i64],
) -> Batch {
    let mut rows = Vec::new();
    let mut leaves = Vec::new();
    let (mut dead_offsets, mut dead_hashes) = (Vec::new(), Vec::new());
    for offset in (first..=last).filter(|offset| !skipped.contains(offset)) {
        if dead.contains(&offset) {
            let hash = payload_hash(format!("garbage at {offset}").as_bytes());
            dead_offsets.push(offset);
            dead_hashes.push(hash);
            leaves.push(dead_letter_leaf_of(&hash));
        } else {
            let row = stored(offset);
            leaves.push(row.leaf);
            rows.push(row);
        }
    }
    let mut digest = DigestRow {
        topic: TOPIC.to_owned(),
        partition: 0,
        first_offset: first,
        last_offset: last,
        num_messages: leaves.len() as u32,
        num_events: rows.len() as u32,
        skipped_offsets: skipped.to_vec(),
        dead_letter_offsets: dead_offsets,
        dead_letter_hashes: dead_hashes,
        leaf_prefixes: leaves.iter().flat_map(leaf_prefix).collect(),
        min_time: 0,
        max_time: 1_000,
        root: merkle::root(&leaves),
        previous_digest: *previous,
        digest: [0; 32],
    };
    redigest(&mut digest);
    Batch { digest, rows }
}

/// Recomputes a digest row's digest from its own fields, as a forger who rewrites a row
/// consistently would.
pub(super) fn redigest(row: &mut DigestRow) {
    row.digest = batch_digest(&row.previous_digest, &range_of(row), &row.root);
}

/// Batches over `ranges`, chained from the start of the partition.
pub(super) fn chain(ranges: &[(i64, i64)]) -> Vec<Batch> {
    let mut previous = GENESIS;
    ranges
        .iter()
        .map(|(first, last)| {
            let batch = batch(&previous, *first, *last, &[], &[]);
            previous = batch.digest.digest;
            batch
        })
        .collect()
}

/// The digest rows of `batches`.
pub(super) fn digests(batches: &[Batch]) -> Vec<DigestRow> {
    batches.iter().map(|batch| batch.digest.clone()).collect()
}

/// The head a checkpoint signed at `signed_at` names for `row`.
pub(super) fn head(row: &DigestRow, signed_at: i64) -> SignedHead {
    SignedHead {
        last_offset: row.last_offset,
        digest: row.digest,
        signed_at,
        key_id: "0123456789abcdef".to_owned(),
    }
}
