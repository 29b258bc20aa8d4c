//! The rows of the integrity tables (migration 0005): one per batch in `ingest_digests`,
//! one per signed checkpoint in `ingest_checkpoints`. The ingester writes them, the
//! verifier and the proof endpoint read them, both through these types; the tables' names
//! are in [`crate::tables`].

use serde::{Deserialize, Serialize};

/// One batch: its offset range (recorded before its insert, so that a replay cuts it the
/// same way) and its digest, chained per partition.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct DigestRow {
    /// The Kafka topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset of the range.
    pub first_offset: i64,
    /// The last offset of the range.
    pub last_offset: i64,
    /// Leaves: stored events plus dead letters.
    pub num_messages: u32,
    /// Stored events.
    pub num_events: u32,
    /// Offsets of the range that had no message.
    pub skipped_offsets: Vec<i64>,
    /// Dead-lettered offsets, ascending.
    pub dead_letter_offsets: Vec<i64>,
    /// SHA-256 of each dead letter's raw payload, as `dead_letter_offsets`.
    pub dead_letter_hashes: Vec<[u8; 32]>,
    /// The first 8 bytes of each leaf, in offset order.
    #[serde(with = "serde_bytes")]
    pub leaf_prefixes: Vec<u8>,
    /// The earliest event time, µs since the epoch (0 without events).
    pub min_time: i64,
    /// The latest event time, µs since the epoch (0 without events).
    pub max_time: i64,
    /// The Merkle root over the leaves.
    pub root: [u8; 32],
    /// The digest of the partition's batch before this one.
    pub previous_digest: [u8; 32],
    /// This batch's digest.
    pub digest: [u8; 32],
}

/// The select list that reads a [`DigestRow`] (times as µs integers).
pub const DIGEST_COLUMNS: &str = "topic, partition, first_offset, last_offset, num_messages, \
     num_events, skipped_offsets, dead_letter_offsets, dead_letter_hashes, leaf_prefixes, \
     toUnixTimestamp64Micro(min_time) AS min_time, toUnixTimestamp64Micro(max_time) AS max_time, \
     root, previous_digest, digest";

/// One signed checkpoint, as stored.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// The topic whose chain heads it signs.
    pub topic: String,
    /// The signing key's id.
    pub key_id: String,
    /// When it was signed, µs since the epoch.
    pub signed_at: i64,
    /// The exact signed text.
    pub body: String,
    /// The Ed25519 signature over `body`, base64.
    pub signature: String,
}

/// The select list that reads a [`CheckpointRow`].
pub const CHECKPOINT_COLUMNS: &str =
    "topic, key_id, toUnixTimestamp64Micro(signed_at) AS signed_at, body, signature";
