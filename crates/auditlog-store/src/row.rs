//! An audit event as a RowBinary row of `audit_logs`, both ways.
//!
//! Encoded and decoded by hand (no per-row serde, no validation round-trip to the server):
//! the column order is [`COLUMNS`], which every insert and select names explicitly, so a
//! column added to the table later (with a default) breaks neither older ingesters nor
//! older readers. The whole-system tests check both against the real table.

use std::io::Write;
use std::net::IpAddr;

use auditlog_event::{
    Action, Actor, ActorView, AuditEvent, BuildReason, Diff, EventView, Organization,
    OrganizationView, ResourceType, unix_micros_saturating,
};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(doc)]
use crate::COLUMNS;
use crate::StoreError;

/// Encodes events as RowBinary rows of [`COLUMNS`]; reuses scratch space, so encoding a row
/// allocates nothing in the steady state. Also for loading data directly (tests, benches):
/// `INSERT INTO t (COLUMNS...) FORMAT RowBinary` with the encoded bytes as the body.
///
/// ```
/// use auditlog_store::{COLUMNS, RowEncoder};
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
    /// Appends `event` as one row of [`stored_columns`](crate::stored_columns): the row
    /// the ingester writes, whose bytes are the event's canonical stored form.
    pub fn encode_stored(&mut self, event: &AuditEvent, source: Source, out: &mut Vec<u8>) {
        self.encode(event, out);
        out.extend_from_slice(&source.partition.to_le_bytes());
        out.extend_from_slice(&source.offset.to_le_bytes());
    }

    /// Appends `event` as one RowBinary row of [`COLUMNS`].
    pub fn encode(&mut self, event: &AuditEvent, out: &mut Vec<u8>) {
        put_uuid(out, event.id);
        // DateTime64(6): microseconds since the epoch. The event's time is validated to fit.
        out.extend_from_slice(&unix_micros_saturating(event.time).to_le_bytes());
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

    /// Appends a valid event read in place as one row of
    /// [`stored_columns`](crate::stored_columns): byte for byte what
    /// [`Self::encode_stored`] writes for the same event decoded, without building it. The
    /// ingester's fast path.
    pub fn encode_view_stored(&mut self, event: &EventView<'_>, source: Source, out: &mut Vec<u8>) {
        self.encode_view(event, out);
        out.extend_from_slice(&source.partition.to_le_bytes());
        out.extend_from_slice(&source.offset.to_le_bytes());
    }

    /// Appends a valid event read in place as one RowBinary row of [`COLUMNS`]: the same
    /// bytes as [`Self::encode`] of the decoded event.
    pub fn encode_view(&mut self, event: &EventView<'_>, out: &mut Vec<u8>) {
        put_uuid(out, event.id);
        out.extend_from_slice(&event.time_micros.to_le_bytes());
        put_uuid(out, event.request_id);
        let organization = event.organization.unwrap_or(OrganizationView {
            id: Uuid::nil(),
            name: "",
            display_name: "",
            icon: "",
        });
        put_uuid(out, organization.id);
        put_str(out, organization.name);
        put_str(out, organization.display_name);
        put_str(out, organization.icon);
        let user = event.user.unwrap_or(ActorView {
            id: Uuid::nil(),
            username: "",
            email: "",
            name: "",
        });
        put_uuid(out, user.id);
        put_str(out, user.username);
        put_str(out, user.email);
        put_str(out, user.name);

        self.scratch.clear();
        match event.ip {
            // Four numbers and three dots by hand, as `Display` writes them: the formatting
            // machinery costs more than the rest of the row's fixed fields.
            Some(IpAddr::V4(v4)) => auditlog_event::put_ipv4(&mut self.scratch, v4),
            // Writing into a Vec cannot fail.
            Some(ip) => {
                let _ = write!(self.scratch, "{ip}");
            }
            None => {}
        }
        put_bytes(out, &self.scratch);
        put_str(out, event.user_agent);

        put_str(out, event.resource_type);
        put_uuid(out, event.resource_id);
        put_str(out, event.resource_target);
        put_str(out, event.resource_icon);
        put_str(out, event.action);

        self.scratch.clear();
        event.write_diff_json(&mut self.scratch);
        put_bytes(out, &self.scratch);
        out.extend_from_slice(&event.status_code.to_le_bytes());
        put_str(out, event.additional_fields);
        put_str(out, event.build_reason.unwrap_or(""));
    }

    fn put_json(&mut self, out: &mut Vec<u8>, value: &impl serde::Serialize) {
        self.scratch.clear();
        // Serializing maps of strings and JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.scratch, value);
        put_bytes(out, &self.scratch);
    }
}

/// A row's source position: the Kafka partition and offset it was consumed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    /// The partition (`-1`: written before rows recorded it).
    pub partition: i32,
    /// The offset (`-1` likewise).
    pub offset: i64,
}

/// One row of a `SELECT stored_columns() ... FORMAT RowBinary` answer: its exact bytes (the
/// canonical stored form) and the fields a verifier needs to place and name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRow<'a> {
    /// The row's bytes, exactly as ClickHouse returned them.
    pub bytes: &'a [u8],
    /// `id`
    pub id: Uuid,
    /// `time`, µs since the epoch.
    pub time_micros: i64,
    /// `organization_id`
    pub organization_id: Uuid,
    /// `source_partition`, `source_offset`
    pub source: Source,
}

/// Splits a RowBinary answer of [`stored_columns`](crate::stored_columns) into rows.
pub fn split_stored_rows(bytes: &[u8]) -> Result<Vec<StoredRow<'_>>, StoreError> {
    let (rows, used) = split_stored_prefix(bytes)?;
    if used < bytes.len() {
        return Err(StoreError::Decode {
            row: rows.len(),
            reason: "the answer ends inside a row",
        });
    }
    Ok(rows)
}

/// The whole rows at the start of `bytes` (a streamed answer's chunks so far), and how many
/// bytes they take: the rest is the start of a row still to come.
pub fn split_stored_prefix(mut bytes: &[u8]) -> Result<(Vec<StoredRow<'_>>, usize), StoreError> {
    let total = bytes.len();
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let row = rows.len();
        let fail = |reason| StoreError::Decode { row, reason };
        let start = bytes;
        let mut reader = Reader { bytes };
        let skimmed = reader
            .skim_row()
            .and_then(|(id, time_micros, organization_id)| {
                let partition = i32::from_le_bytes(reader.array()?);
                let offset = i64::from_le_bytes(reader.array()?);
                Ok((id, time_micros, organization_id, partition, offset))
            });
        let (id, time_micros, organization_id, partition, offset) = match skimmed {
            Ok(fields) => fields,
            Err(TRUNCATED) => break,
            Err(reason) => return Err(fail(reason)),
        };
        let length = start.len() - reader.bytes.len();
        bytes = reader.bytes;
        rows.push(StoredRow {
            bytes: &start[..length],
            id,
            time_micros,
            organization_id,
            source: Source { partition, offset },
        });
    }
    Ok((rows, total - bytes.len()))
}

/// What the reader says when the bytes end inside a row.
const TRUNCATED: &str = "the answer ends inside a row";

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

/// One stored row, columns as [`COLUMNS`]: the event flattened as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogRow {
    /// `id`
    pub id: Uuid,
    /// `time`
    pub time: OffsetDateTime,
    /// `request_id`
    pub request_id: Uuid,
    /// `organization_id` (nil = site-wide)
    pub organization_id: Uuid,
    /// `organization_name`
    pub organization_name: String,
    /// `organization_display_name`
    pub organization_display_name: String,
    /// `organization_icon`
    pub organization_icon: String,
    /// `user_id` (nil = no user)
    pub user_id: Uuid,
    /// `user_username`
    pub user_username: String,
    /// `user_email`
    pub user_email: String,
    /// `user_name`
    pub user_name: String,
    /// `ip` (`''` = unknown)
    pub ip: String,
    /// `user_agent`
    pub user_agent: String,
    /// `resource_type`
    pub resource_type: String,
    /// `resource_id`
    pub resource_id: Uuid,
    /// `resource_target`
    pub resource_target: String,
    /// `resource_icon`
    pub resource_icon: String,
    /// `action`
    pub action: String,
    /// `diff`, JSON text
    pub diff: String,
    /// `status_code`
    pub status_code: i32,
    /// `additional_fields`, JSON text
    pub additional_fields: String,
    /// `build_reason` (`''` = none)
    pub build_reason: String,
}

impl AuditLogRow {
    /// The row's `(time in µs, id)`: its place in the sort order, shared by all its copies.
    pub fn key(&self) -> (i64, Uuid) {
        (unix_micros_saturating(self.time), self.id)
    }

    /// The event this row stores. Reading is lenient, like every reader of stored data:
    /// unknown enum values are kept, and JSON that does not parse (which the ingester never
    /// writes) reads as empty rather than failing the whole page.
    pub fn into_event(self) -> AuditEvent {
        let user = (!self.user_id.is_nil()).then_some(Actor {
            id: self.user_id,
            username: self.user_username,
            email: self.user_email,
            name: self.user_name,
        });
        let organization = (!self.organization_id.is_nil()).then_some(Organization {
            id: self.organization_id,
            name: self.organization_name,
            display_name: self.organization_display_name,
            icon: self.organization_icon,
        });
        AuditEvent {
            id: self.id,
            time: self.time,
            request_id: self.request_id,
            ip: self.ip.parse().ok(),
            user_agent: self.user_agent,
            user,
            organization,
            resource_type: ResourceType::from_wire(&self.resource_type),
            resource_id: self.resource_id,
            resource_target: self.resource_target,
            resource_icon: self.resource_icon,
            action: Action::from_wire(&self.action),
            diff: serde_json::from_str::<Diff>(&self.diff).unwrap_or_default(),
            status_code: self.status_code,
            additional_fields: serde_json::from_str(&self.additional_fields).unwrap_or_default(),
            build_reason: (!self.build_reason.is_empty())
                .then(|| BuildReason::from_wire(&self.build_reason)),
        }
    }
}

/// Decodes a `SELECT COLUMNS... FORMAT RowBinary` answer: the inverse of [`RowEncoder`].
pub fn decode_rows(mut bytes: &[u8]) -> Result<Vec<AuditLogRow>, StoreError> {
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let row = rows.len();
        let fail = |reason| StoreError::Decode { row, reason };
        let mut reader = Reader { bytes };
        let decoded = reader.row().map_err(fail)?;
        bytes = reader.bytes;
        rows.push(decoded);
    }
    Ok(rows)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn row(&mut self) -> Result<AuditLogRow, &'static str> {
        Ok(AuditLogRow {
            id: self.uuid()?,
            time: self.time()?,
            request_id: self.uuid()?,
            organization_id: self.uuid()?,
            organization_name: self.string()?,
            organization_display_name: self.string()?,
            organization_icon: self.string()?,
            user_id: self.uuid()?,
            user_username: self.string()?,
            user_email: self.string()?,
            user_name: self.string()?,
            ip: self.string()?,
            user_agent: self.string()?,
            resource_type: self.string()?,
            resource_id: self.uuid()?,
            resource_target: self.string()?,
            resource_icon: self.string()?,
            action: self.string()?,
            diff: self.string()?,
            status_code: i32::from_le_bytes(self.array()?),
            additional_fields: self.string()?,
            build_reason: self.string()?,
        })
    }

    /// Reads past one row of [`COLUMNS`] keeping only its id, time and organization: the
    /// verifier hashes millions of rows and needs nothing else decoded.
    fn skim_row(&mut self) -> Result<(Uuid, i64, Uuid), &'static str> {
        let id = self.uuid()?;
        let time_micros = i64::from_le_bytes(self.array()?);
        self.take(16)?; // request_id
        let organization_id = self.uuid()?;
        // organization name, display name, icon; then user_id; then username, email, name,
        // ip, user agent; resource type; resource id; target, icon, action, diff.
        for _ in 0..3 {
            self.skip_string()?;
        }
        self.take(16)?;
        for _ in 0..6 {
            self.skip_string()?;
        }
        self.take(16)?;
        for _ in 0..4 {
            self.skip_string()?;
        }
        self.take(4)?; // status_code
        self.skip_string()?; // additional_fields
        self.skip_string()?; // build_reason
        Ok((id, time_micros, organization_id))
    }

    fn skip_string(&mut self) -> Result<(), &'static str> {
        let length = self.string_length()?;
        self.take(length).map(|_| ())
    }

    fn string_length(&mut self) -> Result<usize, &'static str> {
        let mut length = 0_u64;
        let mut shift = 0;
        loop {
            let [byte] = self.array()?;
            length |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err("a string length longer than 64 bits");
            }
        }
        usize::try_from(length).map_err(|_| "a string longer than memory")
    }

    fn take(&mut self, length: usize) -> Result<&[u8], &'static str> {
        if self.bytes.len() < length {
            return Err(TRUNCATED);
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn uuid(&mut self) -> Result<Uuid, &'static str> {
        let high = u64::from_le_bytes(self.array()?);
        let low = u64::from_le_bytes(self.array()?);
        Ok(Uuid::from_u64_pair(high, low))
    }

    fn time(&mut self) -> Result<OffsetDateTime, &'static str> {
        let micros = i64::from_le_bytes(self.array()?);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
            .map_err(|_| "a time outside the representable range")
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let length = self.string_length()?;
        String::from_utf8(self.take(length)?.to_vec()).map_err(|_| "a string that is not UTF-8")
    }
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
    fn a_full_row_decodes_to_the_event_it_encodes() {
        let event = auditlog_event::testing::sample_event();
        let mut bytes = Vec::new();
        let mut encoder = RowEncoder::default();
        encoder.encode(&event, &mut bytes);
        let system = AuditEvent {
            user: None,
            organization: None,
            ip: None,
            build_reason: None,
            ..event.clone()
        };
        encoder.encode(&system, &mut bytes);

        let rows = decode_rows(&bytes).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].key(),
            (unix_micros_saturating(event.time), event.id)
        );
        assert_eq!(rows[0].organization_id, event.organization_id());
        assert_eq!(rows[1].user_username, "");
        assert_eq!(rows[0].clone().into_event(), event);
        assert_eq!(rows[1].clone().into_event(), system);

        let truncated = decode_rows(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(
            truncated.to_string(),
            "undecodable row 1 of a RowBinary answer: the answer ends inside a row"
        );
    }

    #[test]
    fn stored_rows_split_at_their_exact_bytes() {
        let mut encoder = RowEncoder::default();
        let event = auditlog_event::testing::sample_event();
        let mut bytes = Vec::new();
        let first = Source {
            partition: 3,
            offset: 41,
        };
        encoder.encode_stored(&event, first, &mut bytes);
        let one_row = bytes.len();
        encoder.encode_stored(
            &event,
            Source {
                offset: 42,
                ..first
            },
            &mut bytes,
        );

        let rows = split_stored_rows(&bytes).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].bytes, &bytes[..one_row]);
        assert_eq!(rows[1].bytes, &bytes[one_row..]);
        assert_eq!((rows[0].id, rows[0].source), (event.id, first));
        assert_eq!(rows[1].source.offset, 42);
        assert_eq!(rows[0].time_micros, unix_micros_saturating(event.time));
        assert_eq!(rows[0].organization_id, event.organization_id());
        assert!(split_stored_rows(&bytes[..bytes.len() - 3]).is_err());
        let (whole, used) = split_stored_prefix(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!((whole.len(), used), (1, one_row));
    }

    /// The ingester's two paths store the same bytes: a valid event read in place and the
    /// same event decoded.
    #[test]
    fn views_encode_to_the_rows_of_their_decoded_events() {
        use auditlog_event::{EventCodec, Framing};
        let codec = EventCodec::new(Framing::SingleObject);
        let mut events = auditlog_event::testing::sample_events();
        let mut tricky = auditlog_event::testing::sample_event();
        tricky.ip = Some("::ffff:10.0.0.1".parse().unwrap());
        tricky.diff.insert(
            "quote\"é\u{1}",
            auditlog_event::DiffEntry::changed(
                serde_json::json!({"b": [1.5, -2], "a": "\n"}),
                serde_json::Value::Null,
            ),
        );
        tricky
            .additional_fields
            .insert("x".into(), serde_json::json!([1e300, "\u{7f}", {}]));
        events.push(tricky);
        let mut encoder = RowEncoder::default();
        for (offset, event) in events.iter().enumerate() {
            let source = Source {
                partition: 2,
                offset: offset as i64,
            };
            let message = codec.encode_to_vec(event).unwrap();
            let view = codec
                .decode_view(&message)
                .expect("a view of a valid event");
            let mut from_view = Vec::new();
            encoder.encode_view_stored(&view, source, &mut from_view);
            let mut from_event = Vec::new();
            let decoded = codec.decode(&message).unwrap();
            encoder.encode_stored(&decoded, source, &mut from_event);
            assert_eq!(from_view, from_event, "{event:?}");
        }
    }

    #[test]
    fn ipv4_addresses_are_written_as_display_writes_them() {
        for octets in [
            [0, 0, 0, 0],
            [1, 2, 3, 4],
            [10, 99, 100, 255],
            [255, 9, 10, 109],
        ] {
            let ip = std::net::Ipv4Addr::from(octets);
            let mut out = Vec::new();
            auditlog_event::put_ipv4(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
    }

    #[test]
    fn string_lengths_are_leb128() {
        let mut out = Vec::new();
        put_bytes(&mut out, &[7; 300]);
        assert_eq!(&out[..2], &[0xac, 0x02]);
        assert_eq!(out.len(), 302);
    }
}
