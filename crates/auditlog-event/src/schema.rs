//! The committed Avro schemas of the audit event and their fingerprints.
//!
//! `schemas/audit_event.avsc` is the source of truth. Every version ever released is kept
//! as `schemas/avro/audit_event.v<N>.avsc` and listed in [`COMMITTED_VERSIONS`]; the newest
//! one must equal `audit_event.avsc` (a test checks). To change the schema: edit
//! `audit_event.avsc`, copy it to the next `v<N>` file, list it here, and update the fast
//! encoder in `avro.rs`; the tests then check old and new versions can read each other and
//! that the fast path matches apache-avro byte for byte.

use std::sync::OnceLock;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;

/// The newest schema's JSON text, `schemas/audit_event.avsc`.
pub const AUDIT_EVENT_SCHEMA: &str = include_str!("../../../schemas/audit_event.avsc");

/// Every committed version, oldest first, as (version, JSON text).
const COMMITTED_VERSIONS: &[(u32, &str)] =
    &[(1, include_str!("../../../schemas/avro/audit_event.v1.avsc"))];

/// One committed version of the audit event schema.
#[derive(Debug)]
pub struct SchemaVersion {
    version: u32,
    text: &'static str,
    schema: Schema,
    fingerprint: u64,
}

impl SchemaVersion {
    /// The version number, `N` in `audit_event.v<N>.avsc`.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The schema's JSON text as committed.
    pub fn text(&self) -> &'static str {
        self.text
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical Form, as
    /// single-object encoding writes it (little-endian) after the `C3 01` marker.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// Every committed schema version, oldest first; the last one is the newest.
///
/// ```
/// let versions = auditlog_event::schema_versions();
/// assert_eq!(versions.last().unwrap().version(), auditlog_event::newest_schema().version());
/// ```
pub fn schema_versions() -> &'static [SchemaVersion] {
    static VERSIONS: OnceLock<Vec<SchemaVersion>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        COMMITTED_VERSIONS
            .iter()
            .map(|&(version, text)| parse_version(version, text))
            .collect()
    })
}

/// The newest schema version, the one the encoder writes.
pub fn newest_schema() -> &'static SchemaVersion {
    // COMMITTED_VERSIONS is a non-empty constant.
    &schema_versions()[COMMITTED_VERSIONS.len() - 1]
}

/// The committed version numbered `version`.
pub(crate) fn find_version(version: u32) -> Option<&'static SchemaVersion> {
    schema_versions()
        .iter()
        .find(|candidate| candidate.version == version)
}

fn parse_version(version: u32, text: &'static str) -> SchemaVersion {
    // The texts are compiled in and parsed by the tests, so a failure here is a broken
    // commit, not a run-time condition.
    let schema = Schema::parse_str(text)
        .unwrap_or_else(|error| panic!("committed schema v{version} does not parse: {error}"));
    let fingerprint_bytes = schema.fingerprint::<Rabin>().bytes;
    let fingerprint = u64::from_le_bytes(
        fingerprint_bytes
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("a rabin fingerprint has 8 bytes")),
    );
    SchemaVersion {
        version,
        text,
        schema,
        fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_schema_is_the_newest_committed_version() {
        let newest = newest_schema();
        assert_eq!(
            newest.text(),
            AUDIT_EVENT_SCHEMA,
            "schemas/audit_event.avsc must equal schemas/avro/audit_event.v{}.avsc",
            newest.version()
        );
    }

    #[test]
    fn versions_are_numbered_one_up_and_fingerprints_differ() {
        let versions = schema_versions();
        for (index, version) in versions.iter().enumerate() {
            assert_eq!(version.version() as usize, index + 1);
        }
        let mut fingerprints: Vec<u64> = versions.iter().map(SchemaVersion::fingerprint).collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        assert_eq!(fingerprints.len(), versions.len());
    }

    #[test]
    fn every_file_under_schemas_avro_is_committed_here() {
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/avro");
        let mut files: Vec<String> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("audit_event."))
            .collect();
        files.sort_unstable();
        let mut listed: Vec<String> = COMMITTED_VERSIONS
            .iter()
            .map(|(version, _)| format!("audit_event.v{version}.avsc"))
            .collect();
        listed.sort_unstable();
        assert_eq!(files, listed);
    }

    #[test]
    fn fingerprint_is_rabin_of_the_parsing_canonical_form() {
        // Reference value from the Avro specification's test data: the schema "null".
        let null_schema = Schema::parse_str(r#""null""#).unwrap();
        let bytes = null_schema.fingerprint::<Rabin>().bytes;
        assert_eq!(
            i64::from_le_bytes(bytes.try_into().unwrap()),
            7_195_948_357_588_979_594
        );
        // The canonical form drops docs, defaults and logical types, so only the shape counts.
        let canonical = newest_schema().schema().canonical_form();
        assert!(canonical.starts_with(r#"{"name":"dev.auditlog.AuditEvent","type":"record""#));
        assert!(!canonical.contains("doc") && !canonical.contains("logicalType"));
    }
}
