//! Tamper evidence for stored audit events: the hashing, chaining and signing that let an
//! auditor prove, with only a public key, that no stored event was deleted, changed or
//! forged.
//!
//! ```text
//!  batch of offsets ──leaves (event rows, dead-letter payload hashes)──► merkle::root
//!      root + range + previous digest ──chain::batch_digest──► digest (per partition)
//!      chain heads of owned partitions ──CheckpointSigner::sign──► SignedCheckpoint
//!  verifier: recompute roots and digests, TrustedKeys::verify, merkle::verify_inclusion
//! ```
//!
//! Hashing is RFC 6962's (leaf `SHA-256(0x00 ‖ data)`, node `SHA-256(0x01 ‖ l ‖ r)`), keys
//! are Ed25519 in PKCS#8 / SPKI PEM, so any SHA-256 and Ed25519 tool can check the formats.
//! This crate is the arithmetic and the verifier's judgement, without I/O: the ingester
//! writes digests and checkpoints, and the `auditlog-verify` crate (behind `auditlog verify`
//! and the proof route) reads what [`verify`] judges.
//!
//! ```
//! use auditlog_integrity::{BatchRange, CheckpointSigner, ChainHead, GENESIS, TrustedKeys};
//! use auditlog_integrity::{batch_digest, event_leaf, merkle};
//!
//! let leaves = [event_leaf(b"row 0"), event_leaf(b"row 1"), event_leaf(b"row 2")];
//! let root = merkle::root(&leaves);
//! let range = BatchRange {
//!     topic: "audit-events".into(), partition: 0, first_offset: 0, last_offset: 2, count: 3,
//! };
//! let digest = batch_digest(&GENESIS, &range, &root);
//!
//! let proof = merkle::inclusion_proof(&leaves, 1).unwrap();
//! assert!(merkle::verify_inclusion(&leaves[1], 1, 3, &proof, &root));
//!
//! let signer = CheckpointSigner::generate();
//! let head = ChainHead { topic: range.topic, partition: 0, last_offset: 2, digest };
//! let signed = signer.sign(0, vec![head]);
//! let mut trusted = TrustedKeys::default();
//! trusted.add_pem(&signer.public_pem())?;
//! trusted.verify(&signed)?;
//! # Ok::<(), auditlog_integrity::IntegrityError>(())
//! ```

mod chain;
mod checkpoint;
mod error;
pub mod merkle;

pub mod proof;
pub mod verify;

pub use chain::{
    BatchRange, GENESIS, LEAF_PREFIX_BYTES, batch_digest, dead_letter_leaf, dead_letter_leaf_of,
    event_leaf, leaf_prefix, payload_hash,
};
pub use checkpoint::{
    ChainHead, Checkpoint, CheckpointSigner, Envelope, SignedCheckpoint, TrustedKeys, key_id,
};
pub use error::IntegrityError;
pub use merkle::Hash;
