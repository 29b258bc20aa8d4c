//! The S3 archive's layout and manifests: where each object goes, and the chain of manifests
//! that says what the archive must hold.
//!
//! ```text
//!  PREFIX/2026/12/06/audit-events/3/00000000000000001000-00000000000000001499.ndjson.gz
//!  PREFIX/manifests/audit-events/3/0000000041.json ──previous {key, sha256}──▶ 0000000040.json
//!  PREFIX/manifests/audit-events/3/HEAD.json        (the newest manifest's key and SHA-256)
//! ```
//!
//! An object is named after its topic, partition and offset range only (its date folder is
//! the day it was first written), so a retried batch overwrites its own object. Each
//! partition has its own chain: manifest `n` lists the objects after manifest `n - 1`'s last
//! offset with their SHA-256, offset ranges and what the filter skipped, and links to
//! manifest `n - 1` by key and SHA-256, so removing or altering any manifest or object
//! breaks a link a verifier can name.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The manifest format this build writes.
pub const MANIFEST_VERSION: u32 = 1;

/// One archived object, as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestObject {
    /// Its key in the bucket.
    pub key: String,
    /// SHA-256 of its bytes (gzip as stored), lower-case hex.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The first offset of the range it covers.
    pub first_offset: i64,
    /// The last offset of the range it covers (inclusive).
    pub last_offset: i64,
    /// NDJSON lines in it: the events of the range the filter selected.
    pub events: u64,
    /// Messages of the range the sink's filter left out.
    pub filtered: u64,
    /// Messages of the range that were not valid events (the ingester dead-letters them).
    pub malformed: u64,
}

impl ManifestObject {
    /// Whether every offset of the range is accounted for: an event, filtered or malformed.
    pub fn is_complete(&self) -> bool {
        let range = self.last_offset - self.first_offset + 1;
        range >= 0 && self.events + self.filtered + self.malformed == range as u64
    }
}

/// A link to a manifest: its key and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLink {
    /// Its sequence number in the partition's chain (0 for the first).
    pub sequence: u64,
    /// Its key in the bucket.
    pub key: String,
    /// SHA-256 of its bytes, lower-case hex.
    pub sha256: String,
    /// The last offset it covers.
    pub last_offset: i64,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The ingester's signed checkpoint a manifest carries ([`auditlog_integrity::Envelope`]'s
/// fields), and how far its head for the manifest's partition reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCheckpoint {
    /// The exact signed text.
    pub body: String,
    /// Ed25519 over `body`, base64.
    pub signature: String,
    /// The last offset of the manifest's partition the checkpoint signs.
    pub signed_through: i64,
}

/// One checkpoint interval of one partition's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The topic archived.
    pub topic: String,
    /// The partition archived.
    pub partition: i32,
    /// Its place in the partition's chain (0 for the first).
    pub sequence: u64,
    /// The first offset it covers: the previous manifest's last offset plus one.
    pub first_offset: i64,
    /// The last offset it covers (inclusive).
    pub last_offset: i64,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The previous manifest of the chain; `None` for the first.
    pub previous: Option<ManifestLink>,
    /// Its objects, in offset order, contiguous.
    pub objects: Vec<ManifestObject>,
    /// Events in its objects.
    pub events: u64,
    /// Messages its sink's filter left out.
    pub filtered: u64,
    /// Messages that were not valid events.
    pub malformed: u64,
    /// The ingester's signed checkpoint covering these offsets (or the newest there was,
    /// when the ingester was behind); `None` when no checkpoint names the partition.
    #[serde(default)]
    pub checkpoint: Option<ManifestCheckpoint>,
}

/// The archive's keys under one `PREFIX/` (empty, or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLayout {
    prefix: String,
}

/// An object key read back: what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// First offset covered.
    pub first_offset: i64,
    /// Last offset covered (inclusive).
    pub last_offset: i64,
}

const OBJECT_SUFFIX: &str = ".ndjson.gz";

impl ArchiveLayout {
    /// The layout under `prefix` (`""` for the bucket's root; a missing `/` is added).
    pub fn new(prefix: &str) -> Self {
        let trimmed = prefix.trim_matches('/');
        Self {
            prefix: if trimmed.is_empty() {
                String::new()
            } else {
                format!("{trimmed}/")
            },
        }
    }

    /// `PREFIX/`, as written before every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `PREFIX/YYYY/MM/DD/`: a day's folder.
    pub fn date_folder(&self, day: OffsetDateTime) -> String {
        format!(
            "{}{:04}/{:02}/{:02}/",
            self.prefix,
            day.year(),
            u8::from(day.month()),
            day.day()
        )
    }

    /// The object of `topic`/`partition`'s `first..=last`, in the folder of `day`. Offsets
    /// are zero-padded so that keys sort in offset order.
    pub fn object_key(
        &self,
        day: OffsetDateTime,
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
    ) -> String {
        format!(
            "{}{topic}/{partition}/{first:020}-{last:020}{OBJECT_SUFFIX}",
            self.date_folder(day)
        )
    }

    /// What an object key covers; `None` for any other key (manifests among them).
    pub fn parse_object_key(&self, key: &str) -> Option<ObjectName> {
        let rest = key.strip_prefix(&self.prefix)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [year, month, day, topic, partition, file] = parts.as_slice() else {
            return None;
        };
        let digits = |text: &str, len: usize| {
            text.len() == len && text.bytes().all(|byte| byte.is_ascii_digit())
        };
        if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
            return None;
        }
        let (first, last) = file.strip_suffix(OBJECT_SUFFIX)?.split_once('-')?;
        Some(ObjectName {
            topic: (*topic).to_owned(),
            partition: partition.parse().ok()?,
            first_offset: first.parse().ok()?,
            last_offset: last.parse().ok()?,
        })
    }

    /// `PREFIX/manifests/TOPIC/PARTITION/`: one partition's chain.
    pub fn manifest_folder(&self, topic: &str, partition: i32) -> String {
        format!("{}manifests/{topic}/{partition}/", self.prefix)
    }

    /// Manifest `sequence` of a partition's chain.
    pub fn manifest_key(&self, topic: &str, partition: i32, sequence: u64) -> String {
        format!(
            "{}{sequence:010}.json",
            self.manifest_folder(topic, partition)
        )
    }

    /// The partition's pointer to its newest manifest (a [`ManifestLink`]).
    pub fn head_key(&self, topic: &str, partition: i32) -> String {
        format!("{}HEAD.json", self.manifest_folder(topic, partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_round_trip_and_sort_in_offset_order() {
        let layout = ArchiveLayout::new("/prod/");
        let day = OffsetDateTime::from_unix_timestamp(1_765_000_000).unwrap();
        let small = layout.object_key(day, "audit-events", 3, 5, 99);
        let large = layout.object_key(day, "audit-events", 3, 100, 1000);
        assert!(small.starts_with("prod/2025/12/06/audit-events/3/"));
        assert!(small < large);
        assert_eq!(
            layout.parse_object_key(&large),
            Some(ObjectName {
                topic: "audit-events".into(),
                partition: 3,
                first_offset: 100,
                last_offset: 1000,
            })
        );
        assert_eq!(
            layout.parse_object_key(&layout.head_key("audit-events", 3)),
            None
        );
        assert_eq!(
            layout.manifest_key("t", 0, 7),
            "prod/manifests/t/0/0000000007.json"
        );
        assert_eq!(
            ArchiveLayout::new("")
                .object_key(day, "t", 0, 0, 0)
                .split('/')
                .count(),
            6
        );
    }

    #[test]
    fn completeness_counts_every_offset() {
        let mut object = ManifestObject {
            key: "k".into(),
            sha256: String::new(),
            bytes: 0,
            first_offset: 10,
            last_offset: 19,
            events: 7,
            filtered: 2,
            malformed: 1,
        };
        assert!(object.is_complete());
        object.events = 6;
        assert!(!object.is_complete());
    }
}
