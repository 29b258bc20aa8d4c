//! The one error type of the integrity crate.

/// Everything that can go wrong with keys, proofs and checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// A key file that is not a PKCS#8 / SPKI PEM Ed25519 key.
    #[error("unreadable {kind} key: {reason}")]
    Key {
        /// `signing` or `public`.
        kind: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// A checkpoint signed by a key nobody trusts.
    #[error("checkpoint signed by unknown key {key_id}")]
    UnknownKey {
        /// The key id the checkpoint names.
        key_id: String,
    },
    /// A checkpoint whose signature does not match its contents.
    #[error("bad signature on the checkpoint of key {key_id}")]
    BadSignature {
        /// The key id the checkpoint names.
        key_id: String,
    },
    /// Bytes that are not what the format says (a checkpoint, a signature, a proof).
    #[error("malformed {what}")]
    Malformed {
        /// Which part.
        what: &'static str,
    },
    /// A proof that does not check out.
    #[error("the proof does not hold: {reason}")]
    Proof {
        /// The first step that failed.
        reason: String,
    },
}
