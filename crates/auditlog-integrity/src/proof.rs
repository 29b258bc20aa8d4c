//! The proof of one event: everything an auditor needs to check, with any SHA-256 and
//! Ed25519 tool, that the event as stored is the one its batch recorded and that a signed
//! checkpoint covers that batch.
//!
//! ```text
//!  row ──SHA-256(0x00 ‖ 'E' ‖ row)──► leaf ──inclusion_path──► batch root
//!  batch digest = SHA-256(previous ‖ header ‖ root) ──links──► head digest ◄── checkpoint
//! ```
//!
//! `docs/integrity.md` documents every field; `tests/independent_check.py` checks a proof
//! with Python's hashlib and cryptography only.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain::{BatchRange, batch_digest, event_leaf};
use crate::checkpoint::{Envelope, SignedCheckpoint, TrustedKeys};
use crate::{Hash, IntegrityError, merkle};

/// The format name every proof carries.
pub const PROOF_FORMAT: &str = "auditlog-proof-v1";

/// A batch the proof passes through, as hex and numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBatch {
    /// The first offset of the batch.
    pub first_offset: i64,
    /// The last offset of the batch.
    pub last_offset: i64,
    /// Leaves in the batch.
    pub count: u32,
    /// The Merkle root over its leaves, hex.
    pub root: String,
    /// The digest it chains after, hex.
    pub previous_digest: String,
    /// Its digest, hex.
    pub digest: String,
}

/// The proof of one stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProof {
    /// [`PROOF_FORMAT`].
    pub format: String,
    /// The event's id.
    pub event_id: Uuid,
    /// The Kafka topic.
    pub topic: String,
    /// The partition the event was consumed from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The columns of `row`, in order, with their ClickHouse types.
    pub columns: Vec<String>,
    /// The stored row: RowBinary bytes of `columns`, base64.
    pub row: String,
    /// `SHA-256(0x00 ‖ 'E' ‖ row)`, hex.
    pub leaf: String,
    /// The leaf's position among its batch's leaves.
    pub leaf_index: u64,
    /// The RFC 9162 inclusion path from the leaf to the batch root, nearest sibling first.
    pub inclusion_path: Vec<String>,
    /// The event's batch.
    pub batch: ProofBatch,
    /// The batches after it, in order, up to the one the checkpoint names.
    pub links: Vec<ProofBatch>,
    /// The first signed checkpoint that covers the batch; `None` until one is signed.
    pub checkpoint: Option<Envelope>,
}

/// What a proof is built from.
#[derive(Debug)]
pub struct ProofParts<'a> {
    /// The event's id.
    pub event_id: Uuid,
    /// The topic, partition and offset.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// `(name, type)` of the row's columns.
    pub columns: Vec<String>,
    /// The stored row's bytes.
    pub row: &'a [u8],
    /// All leaves of the event's batch, in order.
    pub leaves: &'a [Hash],
    /// The event's leaf index.
    pub leaf_index: usize,
    /// The event's batch and the ones after it up to the checkpoint's head.
    pub batches: Vec<ProofBatch>,
    /// The checkpoint.
    pub checkpoint: Option<Envelope>,
}

/// A batch as the proof shows it.
pub fn proof_batch(range: &BatchRange, root: &Hash, previous: &Hash, digest: &Hash) -> ProofBatch {
    ProofBatch {
        first_offset: range.first_offset,
        last_offset: range.last_offset,
        count: range.count,
        root: hex::encode(root),
        previous_digest: hex::encode(previous),
        digest: hex::encode(digest),
    }
}

impl EventProof {
    /// Assembles a proof; `None` when the leaf index is outside the batch.
    pub fn build(parts: ProofParts<'_>) -> Option<Self> {
        let path = merkle::inclusion_proof(parts.leaves, parts.leaf_index)?;
        let mut batches = parts.batches.into_iter();
        let batch = batches.next()?;
        Some(Self {
            format: PROOF_FORMAT.to_owned(),
            event_id: parts.event_id,
            topic: parts.topic.to_owned(),
            partition: parts.partition,
            offset: parts.offset,
            columns: parts.columns,
            row: base64::engine::general_purpose::STANDARD.encode(parts.row),
            leaf: hex::encode(event_leaf(parts.row)),
            leaf_index: parts.leaf_index as u64,
            inclusion_path: path.iter().map(hex::encode).collect(),
            batch,
            links: batches.collect(),
            checkpoint: parts.checkpoint,
        })
    }

    /// Checks every step, as `docs/integrity.md` tells an auditor to; returns the checkpoint
    /// that covers the event.
    pub fn check(&self, trusted: &TrustedKeys) -> Result<SignedCheckpoint, IntegrityError> {
        let fail = |reason: String| IntegrityError::Proof { reason };
        if self.format != PROOF_FORMAT {
            return Err(fail(format!("unknown format {:?}", self.format)));
        }
        let row = base64::engine::general_purpose::STANDARD
            .decode(&self.row)
            .map_err(|_| fail("the row is not base64".into()))?;
        let leaf = event_leaf(&row);
        if hex::encode(leaf) != self.leaf {
            return Err(fail("the leaf is not the hash of the row".into()));
        }
        let path = self
            .inclusion_path
            .iter()
            .map(|node| unhex(node))
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| fail("an inclusion path node is not 32 bytes of hex".into()))?;
        let root = unhex(&self.batch.root).ok_or_else(|| fail("bad root".into()))?;
        if !merkle::verify_inclusion(
            &leaf,
            self.leaf_index,
            u64::from(self.batch.count),
            &path,
            &root,
        ) {
            return Err(fail("the leaf is not in the batch's tree".into()));
        }
        let mut digest =
            unhex(&self.batch.previous_digest).ok_or_else(|| fail("bad previous digest".into()))?;
        let mut last_offset = self.batch.last_offset;
        for batch in std::iter::once(&self.batch).chain(&self.links) {
            if hex::encode(digest) != batch.previous_digest {
                return Err(fail(format!(
                    "batch {}..={} does not chain after the one before it",
                    batch.first_offset, batch.last_offset
                )));
            }
            let root = unhex(&batch.root).ok_or_else(|| fail("bad root".into()))?;
            let range = BatchRange {
                topic: self.topic.clone(),
                partition: self.partition,
                first_offset: batch.first_offset,
                last_offset: batch.last_offset,
                count: batch.count,
            };
            digest = batch_digest(&digest, &range, &root);
            if hex::encode(digest) != batch.digest {
                return Err(fail(format!(
                    "batch {}..={} does not hash to its digest",
                    batch.first_offset, batch.last_offset
                )));
            }
            last_offset = batch.last_offset;
        }
        let envelope = self
            .checkpoint
            .as_ref()
            .ok_or_else(|| fail("no checkpoint covers the batch yet".into()))?;
        let signed = envelope.open()?;
        trusted.verify(&signed)?;
        let named = signed.checkpoint.heads.iter().any(|head| {
            head.topic == self.topic
                && head.partition == self.partition
                && head.last_offset == last_offset
                && head.digest == digest
        });
        if !named {
            return Err(fail(
                "the checkpoint does not name the chain's last digest".into(),
            ));
        }
        Ok(signed)
    }
}

fn unhex(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChainHead, CheckpointSigner, GENESIS};

    #[test]
    fn a_built_proof_checks_and_a_changed_row_does_not() {
        let rows: Vec<Vec<u8>> = (0..5_u8).map(|number| vec![number; 30]).collect();
        let leaves: Vec<Hash> = rows.iter().map(|row| event_leaf(row)).collect();
        let range = |first, last, count| BatchRange {
            topic: "t".into(),
            partition: 1,
            first_offset: first,
            last_offset: last,
            count,
        };
        let root = merkle::root(&leaves);
        let digest = batch_digest(&GENESIS, &range(0, 4, 5), &root);
        let next_root = [3; 32];
        let next = batch_digest(&digest, &range(5, 9, 5), &next_root);
        let signer = CheckpointSigner::generate();
        let head = ChainHead {
            topic: "t".into(),
            partition: 1,
            last_offset: 9,
            digest: next,
        };
        let envelope = signer.sign(7, vec![head]).envelope();
        let proof = EventProof::build(ProofParts {
            event_id: Uuid::nil(),
            topic: "t",
            partition: 1,
            offset: 3,
            columns: vec![],
            row: &rows[3],
            leaves: &leaves,
            leaf_index: 3,
            batches: vec![
                proof_batch(&range(0, 4, 5), &root, &GENESIS, &digest),
                proof_batch(&range(5, 9, 5), &next_root, &digest, &next),
            ],
            checkpoint: Some(envelope),
        })
        .unwrap();
        let mut trusted = TrustedKeys::default();
        trusted.add_pem(&signer.public_pem()).unwrap();
        proof.check(&trusted).unwrap();

        let mut changed = proof.clone();
        changed.row = base64::engine::general_purpose::STANDARD.encode([9; 30]);
        changed.leaf = hex::encode(event_leaf(&[9; 30]));
        assert!(
            changed
                .check(&trusted)
                .unwrap_err()
                .to_string()
                .contains("not in the batch's tree")
        );
        let mut unsigned = proof.clone();
        unsigned.checkpoint = None;
        assert!(unsigned.check(&trusted).is_err());
        assert!(proof.check(&TrustedKeys::default()).is_err());
    }
}
