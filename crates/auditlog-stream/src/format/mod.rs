//! How an event is written for a destination: one JSON object, carrying the event id as the
//! key a receiver deduplicates on.
//!
//! - [`Format::Coder`]: the event exactly as `GET /api/v2/audit` returns it (`id`).
//! - [`Format::Ocsf`]: an OCSF 1.x event (`metadata.uid`); the mapping is in `ocsf.rs` and
//!   `docs/streaming.md`.

mod coder;
mod ocsf;

use std::fmt;
use std::str::FromStr;

use auditlog_event::AuditEvent;

pub use ocsf::OCSF_VERSION;

/// The formats a sink can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Coder's JSON shape of an audit log (`codersdk.AuditLog`).
    #[default]
    Coder,
    /// OCSF: API Activity, Authentication or Account Change.
    Ocsf,
}

impl Format {
    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Coder => "coder",
            Format::Ocsf => "ocsf",
        }
    }

    /// Appends `event` as one line of compact JSON (no newline).
    /// Serialized straight from the event's fields: no JSON tree is built on the way.
    pub fn write(self, event: &AuditEvent, out: &mut Vec<u8>) {
        match self {
            Format::Coder => coder::write(event, out),
            Format::Ocsf => ocsf::write(event, out),
        }
    }

    /// The event as a JSON value.
    pub fn to_json(self, event: &AuditEvent) -> serde_json::Value {
        match self {
            Format::Coder => coder::to_json(event),
            Format::Ocsf => ocsf::to_json(event),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "coder" => Ok(Format::Coder),
            "ocsf" => Ok(Format::Ocsf),
            other => Err(format!("unknown format {other:?} (expected coder or ocsf)")),
        }
    }
}
