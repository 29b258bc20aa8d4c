//! An audit event as a RowBinary row of `audit_logs`.
//!
//! Encoded by hand (no per-row serde, no validation round-trip to the server): the column
//! order is [`COLUMNS`], which the insert statement names explicitly, so a column added to
//! the table later (with a default) does not break older ingesters. The whole-system tests
//! check this encoding against the real table.

use std::io::Write;

use auditlog_event::AuditEvent;
use uuid::Uuid;

/// The columns every row carries, in encoding order: the table's own column list.
pub const COLUMNS: &[&str] = &auditlog_event::TABLE_COLUMNS;

/// Encodes events as RowBinary rows of [`COLUMNS`]; reuses scratch space, so encoding a row
/// allocates nothing in the steady state. Also for loading data directly (tests, benches):
/// `INSERT INTO t (COLUMNS...) FORMAT RowBinary` with the encoded bytes as the body.
///
/// ```
/// use auditlog_ingester::{COLUMNS, RowEncoder};
///
/// let mut rows = Vec::new();
/// RowEncoder::default().encode(&auditlog_event::testing::sample_event(), &mut rows);
/// assert!(!rows.is_empty());
/// assert_eq!(COLUMNS.len(), 22);
/// ```
#[derive(Debug, Default)]
pub struct RowEncoder {
    scratch: Vec<u8>,
}

impl RowEncoder {
    /// Appends `event` as one RowBinary row.
    pub fn encode(&mut self, event: &AuditEvent, out: &mut Vec<u8>) {
        put_uuid(out, event.id);
        // DateTime64(6): microseconds since the epoch. The event's time is validated to fit.
        let micros = i64::try_from(event.time.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        out.extend_from_slice(&micros.to_le_bytes());
        put_uuid(out, event.request_id);

        match &event.organization {
            Some(organization) => {
                put_uuid(out, organization.id);
                put_str(out, &organization.name);
                put_str(out, &organization.display_name);
                put_str(out, &organization.icon);
            }
            None => {
                put_uuid(out, Uuid::nil());
                put_str(out, "");
                put_str(out, "");
                put_str(out, "");
            }
        }
        match &event.user {
            Some(user) => {
                put_uuid(out, user.id);
                put_str(out, &user.username);
                put_str(out, &user.email);
                put_str(out, &user.name);
            }
            None => {
                put_uuid(out, Uuid::nil());
                put_str(out, "");
                put_str(out, "");
                put_str(out, "");
            }
        }

        self.scratch.clear();
        if let Some(ip) = event.ip {
            // Writing into a Vec cannot fail.
            let _ = write!(self.scratch, "{ip}");
        }
        put_bytes(out, &self.scratch);
        put_str(out, &event.user_agent);

        put_str(out, event.resource_type.as_str());
        put_uuid(out, event.resource_id);
        put_str(out, &event.resource_target);
        put_str(out, &event.resource_icon);
        put_str(out, event.action.as_str());

        self.put_json(out, &event.diff);
        out.extend_from_slice(&event.status_code.to_le_bytes());
        self.put_json(out, &event.additional_fields);
        put_str(
            out,
            event
                .build_reason
                .as_ref()
                .map_or("", |reason| reason.as_str()),
        );
    }

    fn put_json(&mut self, out: &mut Vec<u8>, value: &impl serde::Serialize) {
        self.scratch.clear();
        // Serializing maps of strings and JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.scratch, value);
        put_bytes(out, &self.scratch);
    }
}

/// ClickHouse's RowBinary UUID: the high and low 64-bit halves, each little-endian.
fn put_uuid(out: &mut Vec<u8>, id: Uuid) {
    let (high, low) = id.as_u64_pair();
    out.extend_from_slice(&high.to_le_bytes());
    out.extend_from_slice(&low.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

/// A String: LEB128 length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut length = bytes.len() as u64;
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_halves_are_little_endian() {
        let mut out = Vec::new();
        put_uuid(
            &mut out,
            Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap(),
        );
        assert_eq!(
            out,
            [
                0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa,
                0x99, 0x88
            ]
        );
    }

    #[test]
    fn string_lengths_are_leb128() {
        let mut out = Vec::new();
        put_bytes(&mut out, &[7; 300]);
        assert_eq!(&out[..2], &[0xac, 0x02]);
        assert_eq!(out.len(), 302);
    }
}
