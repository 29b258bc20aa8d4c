//! The one error type of the event crate.
//!
//! The ingester dead-letters a message it cannot decode with the error's text as the
//! reason, so every message is short, lowercase, names the field at fault and has no
//! trailing period.

/// Everything that can go wrong while building, validating, encoding or decoding an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A string that is not one of the values an enum knows, where no escape was asked for.
    #[error("{kind} has invalid value: {value:?} is not a valid value")]
    UnknownValue {
        /// Which enum: `resource_type`, `action` or `build_reason`.
        kind: &'static str,
        /// The rejected text.
        value: String,
    },

    /// The builder was not given a field that has no sensible default.
    #[error("missing required field {field}")]
    MissingField {
        /// The missing field.
        field: &'static str,
    },

    /// An id that must identify something is the nil UUID.
    #[error("{field} must not be the nil uuid")]
    NilId {
        /// The offending field, e.g. `id` or `user.id`.
        field: &'static str,
    },

    /// A field is longer than its limit in [`crate::limits`].
    #[error("{field} is {len} {unit} long, the limit is {max}")]
    TooLong {
        /// The offending field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// What `len` and `max` count: `bytes` or `chars`.
        unit: &'static str,
    },

    /// A value that must be a JSON object is some other JSON value.
    #[error("{field} must be a json object")]
    NotAnObject {
        /// The offending field or argument.
        field: &'static str,
    },

    /// A diff entry marked secret carries an old or new value, which would leak it.
    #[error("secret diff field {field:?} must not carry values")]
    SecretValueInDiff {
        /// The diff field name.
        field: String,
    },

    /// A JSON field that has no track, ignore or secret classification.
    #[error("field {field:?} is not classified as track, ignore or secret")]
    UnclassifiedField {
        /// The field name.
        field: String,
    },

    /// A build reason on an event that is neither a workspace build nor a workspace create.
    #[error(
        "build_reason is only allowed on workspace_build and workspace create events, not {resource_type} {action}"
    )]
    BuildReasonNotAllowed {
        /// The event's resource type.
        resource_type: String,
        /// The event's action.
        action: String,
    },

    /// A status code outside the HTTP range 100..=599.
    #[error("status_code {status_code} is not an http status")]
    InvalidStatusCode {
        /// The offending status code.
        status_code: i32,
    },

    /// A time the storage cannot hold (validation) or `time` cannot represent (decoding).
    #[error("time {micros} us since the epoch is out of range")]
    TimeOutOfRange {
        /// Microseconds since the Unix epoch, saturated for times beyond `i64`.
        micros: i64,
    },

    /// The encoded event is larger than [`crate::limits::MAX_EVENT_BYTES`].
    #[error("encoded event is {len} bytes, the limit is {max}")]
    EventTooLarge {
        /// The encoded size of the datum.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A message with no bytes at all.
    #[error("empty message")]
    Empty,

    /// A message shorter than the header of its framing.
    #[error("message too short: length {len}, the framing header needs {needed}")]
    TooShort {
        /// The message length.
        len: usize,
        /// The header length of the framing its first byte announces.
        needed: usize,
    },

    /// The first bytes match neither single-object encoding nor the Confluent wire format.
    #[error("unknown framing magic {magic:02x?}")]
    UnknownMagic {
        /// The first bytes of the message.
        magic: Vec<u8>,
    },

    /// A single-object message written with a schema this build does not know.
    #[error("unknown schema fingerprint {fingerprint:#018x}")]
    UnknownFingerprint {
        /// The CRC-64-AVRO fingerprint from the header.
        fingerprint: u64,
    },

    /// A Confluent message whose schema id is not registered with the codec.
    #[error("unknown schema id {schema_id}")]
    UnknownSchemaId {
        /// The schema registry id from the header.
        schema_id: u32,
    },

    /// A schema version that is not committed under `schemas/avro/`.
    #[error("unknown schema version {version}")]
    UnknownSchemaVersion {
        /// The requested version.
        version: u32,
    },

    /// The datum ends in the middle of a field.
    #[error("truncated datum at {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },

    /// A variable-length integer longer than ten bytes, or an int beyond 32 bits.
    #[error("malformed varint at {field}")]
    MalformedVarint {
        /// The field being read.
        field: &'static str,
    },

    /// A negative string length or block size.
    #[error("negative length at {field}")]
    NegativeLength {
        /// The field being read.
        field: &'static str,
    },

    /// A union branch index the schema does not have.
    #[error("invalid union index {index} at {field}")]
    InvalidUnionIndex {
        /// The field being read.
        field: &'static str,
        /// The index read.
        index: i64,
    },

    /// A boolean byte other than 0 or 1.
    #[error("invalid boolean byte {byte:#04x} at {field}")]
    InvalidBool {
        /// The field being read.
        field: &'static str,
        /// The byte read.
        byte: u8,
    },

    /// A string that is not UTF-8.
    #[error("invalid utf-8 at {field}")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },

    /// A string that is not a UUID.
    #[error("invalid uuid at {field}")]
    InvalidUuid {
        /// The field being read.
        field: &'static str,
    },

    /// A string that is not an IPv4 or IPv6 address.
    #[error("invalid ip address at ip")]
    InvalidIp,

    /// JSON text that does not parse.
    #[error("invalid json at {field}: {reason}")]
    InvalidJson {
        /// The field being read.
        field: &'static str,
        /// The parser's explanation.
        reason: String,
    },

    /// The same field name twice in one diff.
    #[error("duplicate diff field {field:?}")]
    DuplicateDiffField {
        /// The repeated field name.
        field: String,
    },

    /// Bytes left over after a complete datum.
    #[error("trailing bytes after datum: {count}")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },

    /// apache-avro failed to decode or resolve a datum written with an older schema.
    #[error("avro: {reason}")]
    Avro {
        /// apache-avro's explanation.
        reason: String,
    },

    /// A generic Avro value lacks a field of the newest schema or has the wrong type in it.
    #[error("avro value does not match the schema at {field}")]
    SchemaMismatch {
        /// The field that did not match.
        field: &'static str,
    },
}
