//! Framing: how an encoded event travels as one Kafka message value.
//!
//! ```text
//!                   header                                 body
//! single-object   C3 01 | fingerprint, 8 bytes LE        | Avro datum
//! confluent       00    | schema registry id, 4 bytes BE | Avro datum
//! ```
//!
//! The fingerprint is the CRC-64-AVRO (Rabin) fingerprint of the writer schema's Parsing
//! Canonical Form, so single-object messages name their schema without a registry. The
//! Confluent form is for consumers that resolve schemas through a schema registry.
//!
//! The writer picks one framing ([`Framing`]); the reader recognizes both from the first
//! byte, so a topic can move from one to the other. Messages written with the newest schema
//! take the hand-rolled fast path; older committed versions are decoded by apache-avro and
//! resolved into the newest schema.

use crate::avro::{decode_datum, encode_datum};
use crate::avro_value::decode_generic;
use crate::limits::MAX_EVENT_BYTES;
use crate::schema::{SchemaVersion, find_version};
use crate::view::{EventView, view_datum};
use crate::{AuditEvent, EventError, newest_schema, schema_versions};

/// First two bytes of an Avro single-object encoded message.
const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];

/// Marker (2 bytes) and fingerprint (8 bytes).
const SINGLE_OBJECT_HEADER_LEN: usize = 10;

/// First byte of a message in the Confluent wire format.
const CONFLUENT_MAGIC: u8 = 0x00;

/// Magic byte (1) and schema id (4 bytes).
const CONFLUENT_HEADER_LEN: usize = 5;

/// How messages announce the schema their datum was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Avro single-object encoding: `C3 01`, the schema fingerprint, the datum.
    SingleObject,
    /// Confluent wire format: `00`, the schema registry id of the newest schema, the datum.
    Confluent {
        /// The id a schema registry assigned to `schemas/audit_event.avsc`.
        schema_id: u32,
    },
}

/// Encodes and decodes [`AuditEvent`]s as framed Avro messages.
///
/// ```
/// use auditlog_event::{EventCodec, Framing, testing::sample_event};
///
/// let codec = EventCodec::new(Framing::SingleObject);
/// let mut message = Vec::new();
/// codec.encode(&sample_event(), &mut message)?;
/// assert_eq!(&message[..2], &[0xC3, 0x01]);
/// assert_eq!(codec.decode(&message)?, sample_event());
/// # Ok::<(), auditlog_event::EventError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventCodec {
    framing: Framing,
    header: Vec<u8>,
    /// Schema registry ids of committed versions, for decoding Confluent messages.
    schema_ids: Vec<(u32, &'static SchemaVersion)>,
}

impl EventCodec {
    /// A codec that writes with `framing` and reads both framings.
    ///
    /// With [`Framing::Confluent`] its `schema_id` is known to mean the newest schema;
    /// register older versions' ids with [`Self::with_schema_id`].
    pub fn new(framing: Framing) -> Self {
        let newest = newest_schema();
        let (header, schema_ids) = match framing {
            Framing::SingleObject => {
                let mut header = SINGLE_OBJECT_MARKER.to_vec();
                header.extend_from_slice(&newest.fingerprint().to_le_bytes());
                (header, Vec::new())
            }
            Framing::Confluent { schema_id } => {
                let mut header = vec![CONFLUENT_MAGIC];
                header.extend_from_slice(&schema_id.to_be_bytes());
                (header, vec![(schema_id, newest)])
            }
        };
        EventCodec {
            framing,
            header,
            schema_ids,
        }
    }

    /// Tells the decoder that schema registry id `schema_id` is committed version `version`.
    ///
    /// ```
    /// use auditlog_event::{EventCodec, Framing};
    ///
    /// let codec = EventCodec::new(Framing::Confluent { schema_id: 12 }).with_schema_id(7, 1)?;
    /// assert!(EventCodec::new(Framing::SingleObject).with_schema_id(7, 999).is_err());
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn with_schema_id(mut self, schema_id: u32, version: u32) -> Result<Self, EventError> {
        let Some(schema_version) = find_version(version) else {
            return Err(EventError::UnknownSchemaVersion { version });
        };
        self.schema_ids
            .retain(|(known_id, _)| *known_id != schema_id);
        self.schema_ids.push((schema_id, schema_version));
        Ok(self)
    }

    /// The framing this codec writes.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Appends the framed message of `event` to `out`.
    ///
    /// Does not [validate](AuditEvent::validate) the event; fails, leaving `out` as it was,
    /// if the datum exceeds [`MAX_EVENT_BYTES`](crate::limits::MAX_EVENT_BYTES).
    pub fn encode(&self, event: &AuditEvent, out: &mut Vec<u8>) -> Result<(), EventError> {
        let start = out.len();
        out.extend_from_slice(&self.header);
        let datum_start = out.len();
        if let Err(error) = encode_datum(event, out) {
            out.truncate(start);
            return Err(error);
        }
        let datum_len = out.len() - datum_start;
        if datum_len > MAX_EVENT_BYTES {
            out.truncate(start);
            return Err(EventError::EventTooLarge {
                len: datum_len,
                max: MAX_EVENT_BYTES,
            });
        }
        Ok(())
    }

    /// The framed message of `event` in a new buffer.
    pub fn encode_to_vec(&self, event: &AuditEvent) -> Result<Vec<u8>, EventError> {
        let mut out = Vec::new();
        self.encode(event, &mut out)?;
        Ok(out)
    }

    /// Reads one framed message, in either framing, written with any committed schema.
    ///
    /// Enum values this build does not know are kept (`Unknown`), not rejected.
    pub fn decode(&self, message: &[u8]) -> Result<AuditEvent, EventError> {
        let (writer, datum) = self.split_header(message)?;
        if std::ptr::eq(writer, newest_schema()) {
            decode_datum(datum)
        } else {
            decode_generic(writer, datum)
        }
    }

    /// Reads one framed message as a borrowed [`EventView`], if it is written with the
    /// newest schema, is [valid](AuditEvent::validate_allow_unknown) and its JSON fields are
    /// already in their stored form: the ingester's fast path.
    ///
    /// `None` means "take the general path": [`Self::decode`] and
    /// [`AuditEvent::validate_allow_unknown`], which decide and name the error. A view is
    /// never given for a message that path would refuse.
    ///
    /// ```
    /// use auditlog_event::{EventCodec, Framing, testing::sample_event};
    ///
    /// let codec = EventCodec::new(Framing::SingleObject);
    /// let message = codec.encode_to_vec(&sample_event())?;
    /// let view = codec.decode_view(&message).expect("a valid event of the newest schema");
    /// assert_eq!(view.id, sample_event().id);
    /// assert!(codec.decode_view(&message[..20]).is_none());
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn decode_view<'a>(&self, message: &'a [u8]) -> Option<EventView<'a>> {
        let (writer, datum) = self.split_header(message).ok()?;
        if std::ptr::eq(writer, newest_schema()) {
            view_datum(datum)
        } else {
            None
        }
    }

    /// Finds the writer schema a message announces and the datum after its header.
    fn split_header<'a>(
        &self,
        message: &'a [u8],
    ) -> Result<(&'static SchemaVersion, &'a [u8]), EventError> {
        let Some(&first_byte) = message.first() else {
            return Err(EventError::Empty);
        };
        let header_len = match first_byte {
            byte if byte == SINGLE_OBJECT_MARKER[0] => SINGLE_OBJECT_HEADER_LEN,
            CONFLUENT_MAGIC => CONFLUENT_HEADER_LEN,
            _ => {
                return Err(EventError::UnknownMagic {
                    magic: message.iter().take(2).copied().collect(),
                });
            }
        };
        if message.len() < header_len {
            return Err(EventError::TooShort {
                len: message.len(),
                needed: header_len,
            });
        }
        let (header, datum) = message.split_at(header_len);
        let writer = if first_byte == CONFLUENT_MAGIC {
            let schema_id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            self.schema_ids
                .iter()
                .find(|(known_id, _)| *known_id == schema_id)
                .map(|(_, version)| *version)
                .ok_or(EventError::UnknownSchemaId { schema_id })?
        } else {
            if header[..2] != SINGLE_OBJECT_MARKER {
                return Err(EventError::UnknownMagic {
                    magic: header[..2].to_vec(),
                });
            }
            let mut fingerprint_bytes = [0u8; 8];
            fingerprint_bytes.copy_from_slice(&header[2..]);
            let fingerprint = u64::from_le_bytes(fingerprint_bytes);
            schema_versions()
                .iter()
                .find(|version| version.fingerprint() == fingerprint)
                .ok_or(EventError::UnknownFingerprint { fingerprint })?
        };
        Ok((writer, datum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_event;

    fn single_object() -> EventCodec {
        EventCodec::new(Framing::SingleObject)
    }

    fn error_text(message: &[u8]) -> String {
        single_object().decode(message).unwrap_err().to_string()
    }

    #[test]
    fn headers_are_as_the_framings_specify() {
        let message = single_object().encode_to_vec(&sample_event()).unwrap();
        assert_eq!(&message[..2], &[0xC3, 0x01]);
        assert_eq!(message[2..10], newest_schema().fingerprint().to_le_bytes());
        let codec = EventCodec::new(Framing::Confluent {
            schema_id: 0x0102_0304,
        });
        let message = codec.encode_to_vec(&sample_event()).unwrap();
        assert_eq!(&message[..5], &[0x00, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(codec.decode(&message).unwrap(), sample_event());
    }

    #[test]
    fn encode_appends_and_decode_reads_either_framing() {
        let confluent = EventCodec::new(Framing::Confluent { schema_id: 9 });
        let single = single_object().with_schema_id(9, 1).unwrap();
        let mut buffer = vec![0xEE];
        confluent.encode(&sample_event(), &mut buffer).unwrap();
        assert_eq!(buffer[0], 0xEE);
        assert_eq!(single.decode(&buffer[1..]).unwrap(), sample_event());
        let message = single.encode_to_vec(&sample_event()).unwrap();
        assert_eq!(confluent.decode(&message).unwrap(), sample_event());
    }

    #[test]
    fn framing_errors_are_specific() {
        assert_eq!(error_text(&[]), "empty message");
        assert_eq!(
            error_text(&[0xC3]),
            "message too short: length 1, the framing header needs 10"
        );
        assert_eq!(
            error_text(&[0xC3, 0x01, 0, 0]),
            "message too short: length 4, the framing header needs 10"
        );
        assert_eq!(
            error_text(&[0x00, 0, 0]),
            "message too short: length 3, the framing header needs 5"
        );
        assert_eq!(error_text(b"{\"id\":1}"), "unknown framing magic [7b, 22]");
        assert_eq!(
            error_text(&[0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]),
            "unknown framing magic [c3, 02]"
        );
        assert_eq!(
            error_text(&[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0]),
            "unknown schema fingerprint 0x0807060504030201"
        );
        assert_eq!(error_text(&[0x00, 0, 0, 0, 42, 0]), "unknown schema id 42");
    }

    #[test]
    fn datum_errors_are_specific() {
        let message = single_object().encode_to_vec(&sample_event()).unwrap();
        assert_eq!(error_text(&message[..10]), "truncated datum at id");
        assert_eq!(
            error_text(&message[..message.len() - 1]),
            "truncated datum at build_reason"
        );
        let mut trailing = message.clone();
        trailing.extend_from_slice(&[0, 0, 0]);
        assert_eq!(error_text(&trailing), "trailing bytes after datum: 3");

        // The id is the first field: a 36-byte string right after the header.
        let mut bad_utf8 = message.clone();
        bad_utf8[11] = 0xFF;
        assert_eq!(error_text(&bad_utf8), "invalid utf-8 at id");
        let mut bad_uuid = message.clone();
        bad_uuid[11] = b'x';
        assert_eq!(error_text(&bad_uuid), "invalid uuid at id");
        let mut negative = message.clone();
        negative[10] = 0x01;
        assert_eq!(error_text(&negative), "negative length at id");
    }

    #[test]
    fn unknown_enum_values_are_kept_on_decode() {
        let mut event = sample_event();
        event.resource_type = crate::ResourceType::from_wire("spaceship");
        event.build_reason = Some(crate::BuildReason::from_wire("moonphase"));
        let message = single_object().encode_to_vec(&event).unwrap();
        assert_eq!(single_object().decode(&message).unwrap(), event);
    }

    #[test]
    fn oversized_events_are_refused_and_leave_the_buffer_alone() {
        let mut event = sample_event();
        event.resource_icon = "i".repeat(MAX_EVENT_BYTES);
        let mut buffer = vec![1, 2, 3];
        let error = single_object().encode(&event, &mut buffer).unwrap_err();
        assert!(matches!(error, EventError::EventTooLarge { .. }), "{error}");
        assert_eq!(buffer, [1, 2, 3]);
    }

    #[test]
    fn generic_path_reads_what_the_fast_path_writes() {
        let message = single_object().encode_to_vec(&sample_event()).unwrap();
        let decoded =
            decode_generic(newest_schema(), &message[SINGLE_OBJECT_HEADER_LEN..]).unwrap();
        assert_eq!(decoded, sample_event());
        let mut trailing = message[SINGLE_OBJECT_HEADER_LEN..].to_vec();
        trailing.push(0);
        assert_eq!(
            decode_generic(newest_schema(), &trailing)
                .unwrap_err()
                .to_string(),
            "trailing bytes after datum: 1"
        );
    }
}
