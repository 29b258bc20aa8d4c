//! What a batch's digest covers, and how digests chain per partition.
//!
//! ```text
//!  leaves (offset order) ──merkle::root──► root
//!  digest = SHA-256(previous digest ‖ topic, partition, first offset, last offset, count ‖ root)
//! ```
//!
//! Every integer is big-endian and the topic is length-prefixed, so no two different headers
//! share bytes. The first batch of a partition chains from [`GENESIS`].

use sha2::{Digest, Sha256};

use crate::merkle::{Hash, leaf_hash};

/// The "previous digest" of a partition's first batch.
pub const GENESIS: Hash = [0; 32];

/// Marks a leaf that is a stored event: its canonical stored form follows.
const EVENT_LEAF: u8 = b'E';
/// Marks a leaf that is a dead-lettered message: the SHA-256 of its raw payload follows.
const DEAD_LETTER_LEAF: u8 = b'D';

/// The leaf of a stored event: `leaf_hash('E' ‖ its row)`, the row being the RowBinary bytes
/// of its stored columns in the table's column order.
pub fn event_leaf(row: &[u8]) -> Hash {
    // Hashed in place: the ingester takes this for every row it writes.
    let mut hasher = Sha256::new();
    hasher.update([0x00, EVENT_LEAF]);
    hasher.update(row);
    hasher.finalize().into()
}

/// The leaf of a dead-lettered offset: `leaf_hash('D' ‖ SHA-256(raw payload))`, so a gap in
/// the stored offsets is explained by the payload that went to the dead-letter topic.
pub fn dead_letter_leaf(payload: &[u8]) -> Hash {
    dead_letter_leaf_of(&payload_hash(payload))
}

/// The SHA-256 of a dead letter's raw payload (a null payload hashes as empty).
pub fn payload_hash(payload: &[u8]) -> Hash {
    Sha256::digest(payload).into()
}

/// [`dead_letter_leaf`] from the payload's hash, as the digest row keeps it.
pub fn dead_letter_leaf_of(payload_hash: &Hash) -> Hash {
    let mut data = [0; 33];
    data[0] = DEAD_LETTER_LEAF;
    data[1..].copy_from_slice(payload_hash);
    leaf_hash(&data)
}

/// The first bytes of a leaf, as the digest row lists them to name a changed event.
pub fn leaf_prefix(leaf: &Hash) -> [u8; LEAF_PREFIX_BYTES] {
    let mut prefix = [0; LEAF_PREFIX_BYTES];
    prefix.copy_from_slice(&leaf[..LEAF_PREFIX_BYTES]);
    prefix
}

/// Bytes of each leaf kept in the digest row.
pub const LEAF_PREFIX_BYTES: usize = 8;

/// The source range one batch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRange {
    /// The Kafka topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset in the batch.
    pub first_offset: i64,
    /// The last offset in the batch.
    pub last_offset: i64,
    /// Leaves in the batch (events and dead letters).
    pub count: u32,
}

/// The digest of a batch with `root`, chained after `previous`.
pub fn batch_digest(previous: &Hash, range: &BatchRange, root: &Hash) -> Hash {
    let topic = range.topic.as_bytes();
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update((topic.len() as u16).to_be_bytes());
    hasher.update(topic);
    hasher.update(range.partition.to_be_bytes());
    hasher.update(range.first_offset.to_be_bytes());
    hasher.update(range.last_offset.to_be_bytes());
    hasher.update(range.count.to_be_bytes());
    hasher.update(root);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> BatchRange {
        BatchRange {
            topic: "audit-events".to_owned(),
            partition: 3,
            first_offset: 100,
            last_offset: 149,
            count: 50,
        }
    }

    #[test]
    fn the_digest_is_the_documented_bytes() {
        let root = [7; 32];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&GENESIS);
        bytes.extend_from_slice(&12_u16.to_be_bytes());
        bytes.extend_from_slice(b"audit-events");
        bytes.extend_from_slice(&3_i32.to_be_bytes());
        bytes.extend_from_slice(&100_i64.to_be_bytes());
        bytes.extend_from_slice(&149_i64.to_be_bytes());
        bytes.extend_from_slice(&50_u32.to_be_bytes());
        bytes.extend_from_slice(&root);
        let expected: Hash = Sha256::digest(&bytes).into();
        assert_eq!(batch_digest(&GENESIS, &range(), &root), expected);
    }

    #[test]
    fn every_field_and_the_link_change_the_digest() {
        let root = [7; 32];
        let base = batch_digest(&GENESIS, &range(), &root);
        let changed = [
            BatchRange {
                partition: 4,
                ..range()
            },
            BatchRange {
                first_offset: 101,
                ..range()
            },
            BatchRange {
                last_offset: 150,
                ..range()
            },
            BatchRange {
                count: 49,
                ..range()
            },
            BatchRange {
                topic: "audit-event".to_owned(),
                ..range()
            },
        ];
        for other in changed {
            assert_ne!(batch_digest(&GENESIS, &other, &root), base, "{other:?}");
        }
        assert_ne!(batch_digest(&[1; 32], &range(), &root), base);
        assert_ne!(batch_digest(&GENESIS, &range(), &[8; 32]), base);
        assert_ne!(event_leaf(b"x"), dead_letter_leaf(b"x"));
        assert_eq!(event_leaf(b"row"), leaf_hash(b"Erow"));
        let mut dead = vec![b'D'];
        dead.extend_from_slice(&Sha256::digest(b"payload"));
        assert_eq!(dead_letter_leaf(b"payload"), leaf_hash(&dead));
    }
}
