//! Streaming the audit topic to SIEMs and archives: `auditlog stream`.
//!
//! Each configured sink is a member of its own consumer group (`auditlog-stream-<name>`), so
//! sinks never hold each other back and each scales like the ingester, by running more
//! processes. A sink decodes each message, keeps the events its filter (Coder's language,
//! exactly the API's semantics) selects, formats them (`coder` or `ocsf`), batches them per
//! partition, and delivers each batch until the destination confirms it; only then is the
//! batch's offset committed. A destination that keeps failing blocks its own sink, which
//! shows in `/readyz` and its metrics, and loses nothing. An event the destination refuses
//! for good while taking the rest of its batch goes to the sink's dead-letter topic, with
//! the reason, before the commit.
//!
//! ```text
//!                 ┌─ group auditlog-stream-siem ─▶ Batcher ─▶ webhook ──▶ receiver (HMAC)
//!  audit topic ───┤   decode, filter, format        per        │ confirmed
//!                 │                                 partition  ▼
//!                 │                                           commit
//!                 └─ group auditlog-stream-splunk ─▶ Batcher ─▶ splunk_hec ─▶ HEC (+ ack)
//! ```
//!
//! Modules: `config` (the `[[stream.sinks]]` entries, checked), `matcher` (a filter over one
//! event), `format` (`coder`, `ocsf`), `batcher` (open batches per partition), `sink` (the
//! [`Sink`] trait and one module per kind, with the shared HTTP client), `signature` (the
//! webhook's HMAC), `dead_letter` (each sink's dead-letter topic, for events its destination
//! refuses for good), `isolate` (finding the events in a batch refused whole), `manifest` (the S3 archive's layout and manifest chain), `archive`
//! ([`verify_archive`]: checking an archive offline), `backfill` ([`backfill`]: re-sending a
//! time range from ClickHouse or an offset range from Kafka to one sink), `engine` (the
//! consumers, delivery, retries and commits), `retry`, `health` and [`metrics`].
//!
//! ```
//! use auditlog_stream::{StreamFile, sinks_from_file};
//!
//! let file: StreamFile = toml::from_str(r#"
//!     [[sinks]]
//!     name = "siem"
//!     kind = "webhook"
//!     url = "http://127.0.0.1:9000/audit"
//!     secret = "a secret of sixteen bytes or more"
//!     format = "ocsf"
//!     filter = "resource_type:workspace action:delete"
//! "#).unwrap();
//! let sinks = sinks_from_file(&file, &[])?;
//! assert_eq!(sinks[0].group(), "auditlog-stream-siem");
//!
//! // A filter is checked with the API's grammar and errors.
//! let bad: StreamFile = toml::from_str(r#"
//!     [[sinks]]
//!     name = "siem"
//!     kind = "webhook"
//!     url = "http://127.0.0.1:9000/audit"
//!     secret = "a secret of sixteen bytes or more"
//!     filter = "action:explode"
//! "#).unwrap();
//! let error = sinks_from_file(&bad, &[]).unwrap_err();
//! assert!(error.to_string().contains(r#""explode" is not a valid value"#));
//! # Ok::<(), auditlog_stream::StreamError>(())
//! ```

mod archive;
mod backfill;
mod batcher;
mod config;
mod dead_letter;
mod engine;
mod error;
mod format;
mod health;
mod isolate;
mod manifest;
mod matcher;
pub mod metrics;
mod retry;
mod signature;
pub mod sink;

pub use archive::{ArchiveReport, BackfillRunReport, ChainReport, verify_archive};
pub use backfill::{BackfillConfig, BackfillRange, BackfillReport, backfill};
pub use config::{
    BatchLimits, DEFAULT_METRICS_LISTEN, Destination, GROUP_PREFIX, SinkConfig, SinkFile,
    StreamFile, default_dead_letter_topic, resolve_filter, sinks_from_file,
};
pub use dead_letter::{HEADER_EVENT_ID, HEADER_FORMAT, HEADER_SINK};
pub use engine::{SinkReport, StreamConfig, StreamReport, run};
pub use error::StreamError;
pub use format::{Format, OCSF_VERSION};
pub use health::Health;
pub use manifest::{
    ArchiveLayout, MANIFEST_VERSION, Manifest, ManifestCheckpoint, ManifestLink, ManifestObject,
    ObjectName,
};
pub use matcher::matches;
pub use signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, hmac_sha256, sign_webhook};
pub use sink::{Batch, DeliveryError, FailureClass, Record, Rejection, Sink};
