//! The opaque keyset cursor behind `after=`: the position of the last row of a page.
//!
//! Pages are ordered `time DESC, id DESC`, so the last row's `(time, id)` says exactly where
//! the next page starts, however many rows arrive meanwhile (offsets shift when new events
//! land at the top; a cursor does not).
//!
//! Wire form: URL-safe base64 without padding of 25 bytes:
//!
//! ```text
//!  byte 0      1..9                      9..25
//!  ┌───────┬─────────────────────────┬──────────────────┐
//!  │ 0x01  │ time, µs since epoch,   │ id, 16 bytes     │
//!  │ vers. │ i64 big-endian          │ (RFC 4122 order) │
//!  └───────┴─────────────────────────┴──────────────────┘
//! ```
//!
//! The version byte lets a later format (say, another sort order) reject old cursors with a
//! clear message instead of misreading them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;

const CURSOR_VERSION: u8 = 1;
const CURSOR_LEN: usize = 1 + 8 + 16;

/// Where the next page starts: the `(time, id)` of the last row already seen.
///
/// ```
/// use auditlog_query::Cursor;
/// use uuid::Uuid;
///
/// let cursor = Cursor::new(1_767_225_600_000_000, Uuid::from_u128(1));
/// let text = cursor.encode();
/// assert_eq!(Cursor::decode(&text)?, cursor);
/// # Ok::<(), auditlog_query::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    time_micros: i64,
    id: Uuid,
}

impl Cursor {
    /// A cursor after the row stamped `time_micros` (µs since the Unix epoch) with `id`.
    pub fn new(time_micros: i64, id: Uuid) -> Self {
        Self { time_micros, id }
    }

    /// A cursor after a row as read from ClickHouse (`time` is `DateTime64(6)`).
    pub fn after_row(time: OffsetDateTime, id: Uuid) -> Self {
        // DateTime64(6) holds whole microseconds, so nothing is lost; out-of-range instants
        // cannot come from the column.
        Self::new(auditlog_event::unix_micros_saturating(time), id)
    }

    /// The last seen row's time, in µs since the Unix epoch.
    pub fn time_micros(&self) -> i64 {
        self.time_micros
    }

    /// The last seen row's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The opaque text to hand to the client.
    pub fn encode(&self) -> String {
        let mut bytes = [0_u8; CURSOR_LEN];
        bytes[0] = CURSOR_VERSION;
        bytes[1..9].copy_from_slice(&self.time_micros.to_be_bytes());
        bytes[9..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor produced by [`Cursor::encode`].
    pub fn decode(text: &str) -> Result<Self, Error> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("not URL-safe base64 without padding"))?;
        let Some(&version) = bytes.first() else {
            return Err(invalid("empty"));
        };
        if version != CURSOR_VERSION {
            return Err(invalid(format!("unsupported version {version}")));
        }
        let (Ok(time_bytes), Ok(id_bytes)) = (
            <[u8; 8]>::try_from(bytes.get(1..9).unwrap_or_default()),
            <[u8; 16]>::try_from(bytes.get(9..).unwrap_or_default()),
        ) else {
            return Err(invalid(format!(
                "expected {CURSOR_LEN} bytes, found {}",
                bytes.len()
            )));
        };
        Ok(Self::new(
            i64::from_be_bytes(time_bytes),
            Uuid::from_bytes(id_bytes),
        ))
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidCursor {
        reason: reason.into(),
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.encode())
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::decode(text)
    }
}

impl From<&auditlog_store::AuditLogRow> for Cursor {
    /// The cursor that continues after this row.
    fn from(row: &auditlog_store::AuditLogRow) -> Self {
        Cursor::after_row(row.time, row.id)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn bad_cursors_say_what_is_wrong() {
        let reason = |text: &str| match Cursor::decode(text) {
            Err(Error::InvalidCursor { reason }) => reason,
            other => panic!("expected an invalid cursor, got {other:?}"),
        };
        assert_eq!(reason("not base64!"), "not URL-safe base64 without padding");
        assert_eq!(reason(""), "empty");
        assert_eq!(reason("Ag"), "unsupported version 2");
        assert_eq!(reason("AQID"), "expected 25 bytes, found 3");
        let padded = format!("{}=", Cursor::new(0, Uuid::nil()).encode());
        assert_eq!(reason(&padded), "not URL-safe base64 without padding");
    }

    #[test]
    fn rows_become_microsecond_cursors() {
        let cursor = Cursor::after_row(datetime!(2026-01-01 00:00:00.123456 UTC), Uuid::nil());
        assert_eq!(cursor.time_micros(), 1_767_225_600_123_456);
        assert_eq!(cursor.encode().len(), 34);
        assert!(
            cursor
                .encode()
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        );
    }

    proptest! {
        #[test]
        fn cursors_round_trip(time_micros in any::<i64>(), id in any::<u128>()) {
            let cursor = Cursor::new(time_micros, Uuid::from_u128(id));
            prop_assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        }

        #[test]
        fn decoding_never_panics(text in ".*") {
            let _ = Cursor::decode(&text);
        }
    }
}
