//! Size limits that [`crate::AuditEvent::validate`] enforces.
//!
//! The per-field limits are chosen so that together they keep every valid event under
//! [`MAX_EVENT_BYTES`] (a compile-time assertion below checks the sum), so a valid event
//! always fits in one Kafka message.

use time::OffsetDateTime;
use time::macros::datetime;

/// Longest `user_agent`, in characters: Coder stores it as `varchar(256)`.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// Longest free-text field (resource target and icon, names, email, enum values), in bytes.
pub const MAX_TEXT_BYTES: usize = 4 * 1024;

/// Largest diff, counted as its encoded size in the Avro datum.
pub const MAX_DIFF_BYTES: usize = 256 * 1024;

/// Largest `additional_fields`, counted as the length of its JSON text.
pub const MAX_ADDITIONAL_FIELDS_BYTES: usize = 64 * 1024;

/// Largest encoded datum (without the framing header).
///
/// Below librdkafka's default `message.max.bytes` (1,000,000), leaving room for the framing
/// header, the key, record headers and batch overhead.
pub const MAX_EVENT_BYTES: usize = 960 * 1024;

/// Earliest valid event time: the start of ClickHouse's `DateTime64(6)` range, where events
/// are stored (ClickHouse would silently clamp earlier times).
pub const MIN_TIME: OffsetDateTime = datetime!(1900-01-01 00:00:00 UTC);

/// Latest valid event time: the end of ClickHouse's `DateTime64(6)` range.
pub const MAX_TIME: OffsetDateTime = datetime!(2299-12-31 23:59:59.999999 UTC);

/// Free-text fields bounded by [`MAX_TEXT_BYTES`]: resource target and icon, resource type,
/// action, build reason, the actor's username, email and name, the organization's name,
/// display name and icon.
const NUM_TEXT_FIELDS: usize = 11;

/// Generous bound for everything else: five UUIDs, the time, the IP address, the status
/// code, union indexes, length prefixes and a user agent of 256 four-byte characters.
const MAX_FIXED_BYTES: usize = 4 * 1024;

const _: () = assert!(
    NUM_TEXT_FIELDS * (MAX_TEXT_BYTES + 10)
        + MAX_DIFF_BYTES
        + MAX_ADDITIONAL_FIELDS_BYTES
        + 10
        + MAX_FIXED_BYTES
        <= MAX_EVENT_BYTES,
    "the per-field limits must keep a valid event under MAX_EVENT_BYTES"
);
