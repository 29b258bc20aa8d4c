//! Hand-rolled Avro binary encoding of [`AuditEvent`] for the newest schema: the fast path.
//!
//! apache-avro's generic path builds a tree of `Value`s, looks fields up by name and
//! validates against the schema on every datum, which costs several microseconds per
//! event. This module writes and reads the bytes directly, in the field order of
//! `schemas/audit_event.avsc`. Tests prove it byte-identical to apache-avro for random
//! events, so the schema file stays the source of truth.
//!
//! Avro binary, in brief: `int` and `long` are zig-zag varints; `string` is a length (a
//! long) and UTF-8 bytes; a union is the branch index (a long) and the branch's value; an
//! array is blocks of `count` items ending with a zero count, where a negative count is
//! followed by the block's byte size; a record is its fields in order, with no framing.

use std::collections::btree_map::Entry;
use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::micros::{from_unix_micros, unix_micros};
use crate::{Action, Actor, AuditEvent, BuildReason, Diff, DiffEntry, EventError};
use crate::{Organization, ResourceType};

/// Length of a hyphenated UUID, the Avro `uuid` logical type's string form.
const UUID_TEXT_LEN: usize = 36;

/// Union branch indexes of `["null", T]`.
pub(crate) const UNION_NULL: i64 = 0;
const UNION_VALUE: i64 = 1;

/// A zig-zag varint of an `i64` takes at most ten bytes.
const MAX_VARINT_BYTES: usize = 10;

/// Lengths up to this fit a one-byte varint prefix (zig-zag doubles them).
const MAX_ONE_BYTE_LEN: usize = 63;

/// Appends the Avro datum of `event` to `out`.
///
/// Fails only for a time beyond the 64-bit microsecond range.
pub(crate) fn encode_datum(event: &AuditEvent, out: &mut Vec<u8>) -> Result<(), EventError> {
    out.reserve(estimated_len(event));
    write_uuid(out, &event.id);
    write_long(out, unix_micros(event.time)?);
    write_uuid(out, &event.request_id);
    match &event.ip {
        None => write_long(out, UNION_NULL),
        Some(ip) => {
            write_long(out, UNION_VALUE);
            write_ip(out, ip);
        }
    }
    write_str(out, &event.user_agent);
    match &event.user {
        None => write_long(out, UNION_NULL),
        Some(user) => {
            write_long(out, UNION_VALUE);
            write_uuid(out, &user.id);
            write_str(out, &user.username);
            write_str(out, &user.email);
            write_str(out, &user.name);
        }
    }
    match &event.organization {
        None => write_long(out, UNION_NULL),
        Some(organization) => {
            write_long(out, UNION_VALUE);
            write_uuid(out, &organization.id);
            write_str(out, &organization.name);
            write_str(out, &organization.display_name);
            write_str(out, &organization.icon);
        }
    }
    write_str(out, event.resource_type.as_str());
    write_uuid(out, &event.resource_id);
    write_str(out, &event.resource_target);
    write_str(out, &event.resource_icon);
    write_str(out, event.action.as_str());
    if !event.diff.is_empty() {
        write_long(out, event.diff.len() as i64);
        for (field, entry) in &event.diff {
            write_str(out, field);
            write_json(out, &entry.old);
            write_json(out, &entry.new);
            out.push(u8::from(entry.secret));
        }
    }
    write_long(out, 0);
    write_long(out, i64::from(event.status_code));
    write_json(out, &event.additional_fields);
    match &event.build_reason {
        None => write_long(out, UNION_NULL),
        Some(build_reason) => {
            write_long(out, UNION_VALUE);
            write_str(out, build_reason.as_str());
        }
    }
    Ok(())
}

/// Reads one datum that must span all of `datum`.
pub(crate) fn decode_datum(datum: &[u8]) -> Result<AuditEvent, EventError> {
    let mut reader = Reader { rest: datum };
    let id = reader.read_uuid("id")?;
    let time = from_unix_micros(reader.read_long("time")?)?;
    let request_id = reader.read_uuid("request_id")?;
    let ip = if reader.read_optional("ip")? {
        let text = reader.read_str("ip")?;
        // Producers in other languages may write "" for an unknown address, as Coder's API does.
        if text.is_empty() {
            None
        } else {
            Some(text.parse().map_err(|_| EventError::InvalidIp)?)
        }
    } else {
        None
    };
    let user_agent = reader.read_string("user_agent")?;
    let user = if reader.read_optional("user")? {
        Some(Actor {
            id: reader.read_uuid("user.id")?,
            username: reader.read_string("user.username")?,
            email: reader.read_string("user.email")?,
            name: reader.read_string("user.name")?,
        })
    } else {
        None
    };
    let organization = if reader.read_optional("organization")? {
        Some(Organization {
            id: reader.read_uuid("organization.id")?,
            name: reader.read_string("organization.name")?,
            display_name: reader.read_string("organization.display_name")?,
            icon: reader.read_string("organization.icon")?,
        })
    } else {
        None
    };
    let resource_type = ResourceType::from_wire(reader.read_str("resource_type")?);
    let resource_id = reader.read_uuid("resource_id")?;
    let resource_target = reader.read_string("resource_target")?;
    let resource_icon = reader.read_string("resource_icon")?;
    let action = Action::from_wire(reader.read_str("action")?);
    let diff = reader.read_diff()?;
    let status_code = reader.read_int("status_code")?;
    let additional_fields = match reader.read_json("additional_fields")? {
        Value::Object(object) => object,
        _ => {
            return Err(EventError::NotAnObject {
                field: "additional_fields",
            });
        }
    };
    let build_reason = if reader.read_optional("build_reason")? {
        Some(BuildReason::from_wire(reader.read_str("build_reason")?))
    } else {
        None
    };
    if !reader.rest.is_empty() {
        return Err(EventError::TrailingBytes {
            count: reader.rest.len(),
        });
    }
    Ok(AuditEvent {
        id,
        time,
        request_id,
        ip,
        user_agent,
        user,
        organization,
        resource_type,
        resource_id,
        resource_target,
        resource_icon,
        action,
        diff,
        status_code,
        additional_fields,
        build_reason,
    })
}

/// A guess at the encoded size, so that `out` grows at most once per event.
fn estimated_len(event: &AuditEvent) -> usize {
    const FIXED_AND_JSON_GUESS: usize = 256;
    let user_len = event.user.as_ref().map_or(0, |user| {
        UUID_TEXT_LEN + user.username.len() + user.email.len() + user.name.len()
    });
    let organization_len = event.organization.as_ref().map_or(0, |organization| {
        UUID_TEXT_LEN
            + organization.name.len()
            + organization.display_name.len()
            + organization.icon.len()
    });
    FIXED_AND_JSON_GUESS
        + 3 * UUID_TEXT_LEN
        + event.user_agent.len()
        + user_len
        + organization_len
        + event.resource_target.len()
        + event.resource_icon.len()
        + event.diff.len() * 64
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzagged = zigzag(value);
    // Union indexes, short lengths and the closing zeros: most longs are one byte.
    if zigzagged < 0x80 {
        out.push(zigzagged as u8);
        return;
    }
    let mut buffer = [0u8; MAX_VARINT_BYTES];
    let mut len = 0;
    while zigzagged >= 0x80 {
        buffer[len] = (zigzagged as u8) | 0x80;
        zigzagged >>= 7;
        len += 1;
    }
    buffer[len] = zigzagged as u8;
    out.extend_from_slice(&buffer[..=len]);
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    write_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

/// Writes an address in `Display` form, which the decoder's `parse` reads back.
fn write_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    // The longest textual address is 45 bytes, so its length prefix is one byte.
    let prefix_at = out.len();
    out.push(0);
    match ip {
        IpAddr::V4(v4) => crate::ip_text::put_ipv4(out, *v4),
        IpAddr::V6(v6) => {
            let _infallible_for_vec = write!(out, "{v6}");
        }
    }
    let len = out.len() - prefix_at - 1;
    debug_assert!(len <= MAX_ONE_BYTE_LEN);
    out[prefix_at] = zigzag(len as i64) as u8;
}

fn write_uuid(out: &mut Vec<u8>, uuid: &Uuid) {
    let mut text = [0u8; UUID_TEXT_LEN];
    uuid.hyphenated().encode_lower(&mut text);
    write_long(out, UUID_TEXT_LEN as i64);
    out.extend_from_slice(&text);
}

/// Writes JSON text as an Avro string, serializing straight into `out`: a one-byte length
/// is reserved up front and the text moved right in the rare case it needs more.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let prefix_at = out.len();
    out.push(0);
    if serde_json::to_writer(&mut *out, value).is_err() {
        // Unreachable for JSON values (see `json_len`); keep the datum well-formed anyway.
        out.truncate(prefix_at + 1);
        out.extend_from_slice(b"null");
    }
    let text_at = prefix_at + 1;
    let len = out.len() - text_at;
    if len <= MAX_ONE_BYTE_LEN {
        out[prefix_at] = zigzag(len as i64) as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(MAX_VARINT_BYTES);
    write_long(&mut prefix, len as i64);
    let extra = prefix.len() - 1;
    out.resize(out.len() + extra, 0);
    out.copy_within(text_at..text_at + len, text_at + extra);
    out[prefix_at..prefix_at + prefix.len()].copy_from_slice(&prefix);
}

/// A cursor over a datum; every read names the field for its error.
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn read_long(&mut self, field: &'static str) -> Result<i64, EventError> {
        let mut zigzagged: u64 = 0;
        for (index, &byte) in self.rest.iter().take(MAX_VARINT_BYTES).enumerate() {
            // The tenth byte carries only the 64th bit.
            if index == MAX_VARINT_BYTES - 1 && byte > 1 {
                return Err(EventError::MalformedVarint { field });
            }
            zigzagged |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[index + 1..];
                return Ok((zigzagged >> 1) as i64 ^ -((zigzagged & 1) as i64));
            }
        }
        if self.rest.len() < MAX_VARINT_BYTES {
            Err(EventError::Truncated { field })
        } else {
            Err(EventError::MalformedVarint { field })
        }
    }

    pub(crate) fn read_int(&mut self, field: &'static str) -> Result<i32, EventError> {
        let value = self.read_long(field)?;
        i32::try_from(value).map_err(|_| EventError::MalformedVarint { field })
    }

    pub(crate) fn read_len(&mut self, field: &'static str) -> Result<usize, EventError> {
        let len = self.read_long(field)?;
        usize::try_from(len).map_err(|_| EventError::NegativeLength { field })
    }

    pub(crate) fn read_bytes(&mut self, field: &'static str) -> Result<&'a [u8], EventError> {
        let len = self.read_len(field)?;
        if len > self.rest.len() {
            return Err(EventError::Truncated { field });
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    pub(crate) fn read_str(&mut self, field: &'static str) -> Result<&'a str, EventError> {
        let bytes = self.read_bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| EventError::InvalidUtf8 { field })
    }

    fn read_string(&mut self, field: &'static str) -> Result<String, EventError> {
        self.read_str(field).map(str::to_owned)
    }

    pub(crate) fn read_uuid(&mut self, field: &'static str) -> Result<Uuid, EventError> {
        let bytes = self.read_bytes(field)?;
        // A uuid is ASCII, so what parses needs no UTF-8 check of its own; what does not
        // gets the verdict it always got: invalid UTF-8 first, then an invalid uuid.
        if let Ok(uuid) = Uuid::try_parse_ascii(bytes) {
            return Ok(uuid);
        }
        std::str::from_utf8(bytes).map_err(|_| EventError::InvalidUtf8 { field })?;
        Err(EventError::InvalidUuid { field })
    }

    fn read_json(&mut self, field: &'static str) -> Result<Value, EventError> {
        let text = self.read_str(field)?;
        serde_json::from_str(text).map_err(|error| EventError::InvalidJson {
            field,
            reason: error.to_string(),
        })
    }

    pub(crate) fn read_bool(&mut self, field: &'static str) -> Result<bool, EventError> {
        let Some((&byte, rest)) = self.rest.split_first() else {
            return Err(EventError::Truncated { field });
        };
        self.rest = rest;
        match byte {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(EventError::InvalidBool { field, byte }),
        }
    }

    /// Reads the branch index of a `["null", T]` union: whether a value follows.
    pub(crate) fn read_optional(&mut self, field: &'static str) -> Result<bool, EventError> {
        match self.read_long(field)? {
            UNION_NULL => Ok(false),
            UNION_VALUE => Ok(true),
            index => Err(EventError::InvalidUnionIndex { field, index }),
        }
    }

    fn read_diff(&mut self) -> Result<Diff, EventError> {
        let mut entries = std::collections::BTreeMap::new();
        loop {
            let count = self.read_long("diff")?;
            if count == 0 {
                break;
            }
            // Writers that buffer blocks prefix a negative count with the block's byte size.
            if count < 0 {
                self.read_len("diff")?;
            }
            for _ in 0..count.unsigned_abs() {
                let field = self.read_string("diff.field")?;
                let entry = DiffEntry {
                    old: self.read_json("diff.old")?,
                    new: self.read_json("diff.new")?,
                    secret: self.read_bool("diff.secret")?,
                };
                match entries.entry(field) {
                    Entry::Vacant(vacant) => {
                        vacant.insert(entry);
                    }
                    Entry::Occupied(occupied) => {
                        return Err(EventError::DuplicateDiffField {
                            field: occupied.key().clone(),
                        });
                    }
                }
            }
        }
        Ok(Diff::from_entries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoded_len::varint_len;
    use crate::testing::sample_event;

    fn long_bytes(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_long(&mut out, value);
        out
    }

    #[test]
    fn longs_are_zigzag_varints() {
        assert_eq!(long_bytes(0), [0x00]);
        assert_eq!(long_bytes(-1), [0x01]);
        assert_eq!(long_bytes(1), [0x02]);
        assert_eq!(long_bytes(-64), [0x7f]);
        assert_eq!(long_bytes(64), [0x80, 0x01]);
        assert_eq!(long_bytes(i64::MAX).len(), MAX_VARINT_BYTES);
        for value in [
            0,
            1,
            -1,
            63,
            64,
            -65,
            300,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let bytes = long_bytes(value);
            let mut reader = Reader { rest: &bytes };
            assert_eq!(reader.read_long("x").unwrap(), value);
            assert!(reader.rest.is_empty());
        }
    }

    #[test]
    fn varint_len_matches_the_writer() {
        for len in [0, 1, 63, 64, 127, 8191, 8192, 1 << 20, usize::MAX >> 2] {
            assert_eq!(varint_len(len), long_bytes(len as i64).len(), "{len}");
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_rejected() {
        let mut reader = Reader { rest: &[0xff; 11] };
        assert!(matches!(
            reader.read_long("x"),
            Err(EventError::MalformedVarint { field: "x" })
        ));
        let mut reader = Reader {
            rest: &[0x80, 0x80],
        };
        assert!(matches!(
            reader.read_long("x"),
            Err(EventError::Truncated { field: "x" })
        ));
        let mut reader = Reader {
            rest: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        };
        assert!(matches!(
            reader.read_long("x"),
            Err(EventError::MalformedVarint { .. })
        ));
    }

    #[test]
    fn json_longer_than_a_one_byte_prefix_is_moved_right() {
        for len in [0, 61, 62, 63, 64, 200, 10_000] {
            let value = Value::String("x".repeat(len));
            let mut out = vec![0xaa];
            write_json(&mut out, &value);
            let mut reader = Reader { rest: &out[1..] };
            assert_eq!(reader.read_json("j").unwrap(), value);
            assert!(reader.rest.is_empty());
            assert_eq!(out.len(), 1 + varint_len(len + 2) + len + 2);
        }
    }

    #[test]
    fn negative_block_counts_with_byte_sizes_are_read() {
        let mut event = sample_event();
        event.diff = Diff::new();
        event.diff.insert(
            "a",
            DiffEntry::changed(Value::Bool(true), Value::Bool(false)),
        );
        let mut canonical = Vec::new();
        encode_datum(&event, &mut canonical).unwrap();

        // Rewrite the diff block as count -1 followed by its byte size.
        let mut entry = Vec::new();
        write_str(&mut entry, "a");
        write_json(&mut entry, &Value::Bool(true));
        write_json(&mut entry, &Value::Bool(false));
        entry.push(0);
        let mut block_form = Vec::new();
        write_long(&mut block_form, -1);
        write_long(&mut block_form, entry.len() as i64);
        block_form.extend_from_slice(&entry);
        let mut canonical_form = Vec::new();
        write_long(&mut canonical_form, 1);
        canonical_form.extend_from_slice(&entry);
        let at = canonical
            .windows(canonical_form.len())
            .position(|window| window == canonical_form.as_slice())
            .unwrap();
        let mut rewritten = canonical[..at].to_vec();
        rewritten.extend_from_slice(&block_form);
        rewritten.extend_from_slice(&canonical[at + canonical_form.len()..]);
        assert_eq!(decode_datum(&rewritten).unwrap(), event);
    }
}
