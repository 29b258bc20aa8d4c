//! Signed checkpoints: the chain heads of the partitions an ingester owns, signed with
//! Ed25519, so a verifier holding only the public key can trust every digest up to them.
//!
//! The signed bytes are text, one field per line, so an auditor can rebuild them by hand:
//!
//! ```text
//! auditlog-checkpoint-v1
//! key <key id>
//! time <µs since the epoch>
//! head <topic> <partition> <last offset> <digest, hex>     (one per partition, sorted)
//! ```

use std::collections::BTreeMap;

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::IntegrityError;
use crate::merkle::Hash;

/// The newest digest of one partition's chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChainHead {
    /// The Kafka topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The last offset the digest covers.
    pub last_offset: i64,
    /// The digest.
    pub digest: Hash,
}

/// What a checkpoint says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// When it was signed, µs since the epoch.
    pub time_micros: i64,
    /// The chain heads, sorted by topic and partition.
    pub heads: Vec<ChainHead>,
}

impl Checkpoint {
    /// The exact bytes that are signed.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut heads = self.heads.clone();
        heads.sort();
        let mut text = format!(
            "auditlog-checkpoint-v1\nkey {}\ntime {}\n",
            self.key_id, self.time_micros
        );
        for head in &heads {
            text.push_str(&format!(
                "head {} {} {} {}\n",
                head.topic,
                head.partition,
                head.last_offset,
                hex::encode(head.digest)
            ));
        }
        text.into_bytes()
    }
}

impl Checkpoint {
    /// Reads the signed text back; `None` unless it is exactly what [`signed_bytes`]
    /// writes, so a parsed checkpoint re-serializes to the bytes that were signed.
    ///
    /// [`signed_bytes`]: Checkpoint::signed_bytes
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != "auditlog-checkpoint-v1" {
            return None;
        }
        let key_id = lines.next()?.strip_prefix("key ")?.to_owned();
        let time_micros = lines.next()?.strip_prefix("time ")?.parse().ok()?;
        let mut heads = Vec::new();
        for line in lines {
            let mut fields = line.strip_prefix("head ")?.split(' ');
            let topic = fields.next()?.to_owned();
            let partition = fields.next()?.parse().ok()?;
            let last_offset = fields.next()?.parse().ok()?;
            let digest = hex::decode(fields.next()?).ok()?.try_into().ok()?;
            if fields.next().is_some() {
                return None;
            }
            heads.push(ChainHead {
                topic,
                partition,
                last_offset,
                digest,
            });
        }
        let checkpoint = Self {
            key_id,
            time_micros,
            heads,
        };
        (checkpoint.signed_bytes() == text.as_bytes()).then_some(checkpoint)
    }
}

/// A checkpoint as it travels and is stored: the signed text and the base64 signature, the
/// same in ClickHouse, in the Kafka topic and in `--checkpoints file:` (one JSON per line).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Envelope {
    /// The exact signed text ([`Checkpoint::signed_bytes`]).
    pub body: String,
    /// Ed25519 over `body`, base64 (standard alphabet, padded).
    pub signature: String,
}

impl Envelope {
    /// Reads the envelope back into a checkpoint and its signature.
    pub fn open(&self) -> Result<SignedCheckpoint, IntegrityError> {
        let checkpoint = Checkpoint::parse(&self.body).ok_or(IntegrityError::Malformed {
            what: "checkpoint text",
        })?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .ok_or(IntegrityError::Malformed {
                what: "checkpoint signature",
            })?;
        Ok(SignedCheckpoint {
            checkpoint,
            signature,
        })
    }
}

/// A checkpoint and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The contents.
    pub checkpoint: Checkpoint,
    /// Ed25519 over [`Checkpoint::signed_bytes`].
    pub signature: [u8; 64],
}

/// A key's id: the first 8 bytes of the SHA-256 of its 32-byte public key, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The ingester's signing key.
#[derive(Debug)]
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl SignedCheckpoint {
    /// The envelope it is stored and sent as.
    pub fn envelope(&self) -> Envelope {
        Envelope {
            body: String::from_utf8_lossy(&self.checkpoint.signed_bytes()).into_owned(),
            signature: base64::engine::general_purpose::STANDARD.encode(self.signature),
        }
    }
}

impl CheckpointSigner {
    /// A new random key (`auditlog keygen`).
    pub fn generate() -> Self {
        let mut secret = [0_u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self::from_key(SigningKey::from_bytes(&secret))
    }

    /// The key in a PKCS#8 PEM file's text (`-----BEGIN PRIVATE KEY-----`), as `openssl
    /// genpkey -algorithm ed25519` writes it.
    pub fn from_pem(pem: &str) -> Result<Self, IntegrityError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_key)
            .map_err(|error| IntegrityError::Key {
                kind: "signing",
                reason: error.to_string(),
            })
    }

    fn from_key(key: SigningKey) -> Self {
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// The signing key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(Default::default())
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), for verifiers.
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }

    /// This key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs the chain heads as of `time_micros`.
    pub fn sign(&self, time_micros: i64, mut heads: Vec<ChainHead>) -> SignedCheckpoint {
        heads.sort();
        let checkpoint = Checkpoint {
            key_id: self.key_id.clone(),
            time_micros,
            heads,
        };
        let signature = self.key.sign(&checkpoint.signed_bytes()).to_bytes();
        SignedCheckpoint {
            checkpoint,
            signature,
        }
    }
}

/// The public keys a verifier trusts, by key id; several at once during a rotation.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// Adds a public key from SPKI PEM text; returns its id.
    pub fn add_pem(&mut self, pem: &str) -> Result<String, IntegrityError> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|error| IntegrityError::Key {
            kind: "public",
            reason: error.to_string(),
        })?;
        let id = key_id(&key);
        self.keys.insert(id.clone(), key);
        Ok(id)
    }

    /// Checks a checkpoint's signature against the key it names.
    pub fn verify(&self, signed: &SignedCheckpoint) -> Result<(), IntegrityError> {
        let key_id = &signed.checkpoint.key_id;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| IntegrityError::UnknownKey {
                key_id: key_id.clone(),
            })?;
        key.verify(
            &signed.checkpoint.signed_bytes(),
            &Signature::from_bytes(&signed.signature),
        )
        .map_err(|_| IntegrityError::BadSignature {
            key_id: key_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> Vec<ChainHead> {
        vec![
            ChainHead {
                topic: "audit-events".to_owned(),
                partition: 1,
                last_offset: 99,
                digest: [2; 32],
            },
            ChainHead {
                topic: "audit-events".to_owned(),
                partition: 0,
                last_offset: 41,
                digest: [1; 32],
            },
        ]
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_the_public_key_only() {
        let signer = CheckpointSigner::generate();
        let signed = signer.sign(1_700_000_000_000_000, heads());
        let text = String::from_utf8(signed.checkpoint.signed_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "auditlog-checkpoint-v1\nkey {}\ntime 1700000000000000\n\
                 head audit-events 0 41 {}\nhead audit-events 1 99 {}\n",
                signer.key_id(),
                "01".repeat(32),
                "02".repeat(32)
            )
        );
        let mut trusted = TrustedKeys::default();
        assert_eq!(
            trusted.add_pem(&signer.public_pem()).unwrap(),
            signer.key_id()
        );
        trusted.verify(&signed).unwrap();

        // The envelope carries it intact, and nothing else parses as a checkpoint.
        let envelope = signed.envelope();
        assert_eq!(envelope.open().unwrap(), signed);
        for broken in [
            text.replace("v1", "v2"),
            text.replace("head audit-events 0 41", "head audit-events 0 x"),
            format!("{text}junk\n"),
            text.trim_end().to_owned(),
        ] {
            assert!(Checkpoint::parse(&broken).is_none(), "{broken}");
        }

        // A reloaded key signs identically (Ed25519 is deterministic).
        let reloaded = CheckpointSigner::from_pem(&signer.to_pem()).unwrap();
        assert_eq!(reloaded.sign(1_700_000_000_000_000, heads()), signed);
    }

    #[test]
    fn changed_contents_and_unknown_keys_are_named() {
        let signer = CheckpointSigner::generate();
        let mut trusted = TrustedKeys::default();
        trusted.add_pem(&signer.public_pem()).unwrap();
        let mut signed = signer.sign(1, heads());
        signed.checkpoint.heads[0].last_offset += 1;
        assert!(matches!(
            trusted.verify(&signed),
            Err(IntegrityError::BadSignature { .. })
        ));

        let stranger = CheckpointSigner::generate().sign(1, heads());
        assert!(matches!(
            trusted.verify(&stranger),
            Err(IntegrityError::UnknownKey { .. })
        ));
        assert!(CheckpointSigner::from_pem("not a key").is_err());
        assert!(
            trusted
                .add_pem("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
    }
}
