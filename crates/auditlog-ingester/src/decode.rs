//! From a message's bytes to its stored row, by the shortest safe way.
//!
//! ```text
//! payload ── decode_view ──▶ EventView (borrowed) ──▶ RowEncoder::encode_view_stored ─┐
//!        └── otherwise: decode + validate_allow_unknown ──▶ AuditEvent ──▶ encode_stored ┴─▶ row
//! ```
//!
//! Most messages are valid events the SDK wrote, whose JSON fields are already in their
//! stored form: they are read in place and their JSON copied through, no `Value`s built. The
//! rest take the general path, which is the only one that refuses: dead-letter reasons and
//! kinds come from it alone, so the fast path changes nothing but speed.

use auditlog_event::{AuditEvent, EventCodec, EventError, EventView};
use auditlog_store::{RowEncoder, Source};

/// A message that is a valid event, read one way or the other.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    /// Read in place.
    View(EventView<'a>),
    /// Decoded and validated.
    Event(AuditEvent),
}

impl Decoded<'_> {
    /// Reads `payload`; fails exactly when decoding or validating it does.
    pub(crate) fn read<'a>(
        codec: &EventCodec,
        payload: &'a [u8],
    ) -> Result<Decoded<'a>, EventError> {
        if let Some(view) = codec.decode_view(payload) {
            return Ok(Decoded::View(view));
        }
        let event = codec.decode(payload)?;
        event.validate_allow_unknown()?;
        Ok(Decoded::Event(event))
    }

    /// The event's time, µs since the epoch.
    pub(crate) fn time_micros(&self) -> i64 {
        match self {
            Decoded::View(view) => view.time_micros,
            Decoded::Event(event) => auditlog_event::unix_micros_saturating(event.time),
        }
    }

    /// Appends the event's stored row.
    pub(crate) fn encode_stored(
        &self,
        encoder: &mut RowEncoder,
        source: Source,
        out: &mut Vec<u8>,
    ) {
        match self {
            Decoded::View(view) => encoder.encode_view_stored(view, source, out),
            Decoded::Event(event) => encoder.encode_stored(event, source, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use auditlog_event::Framing;
    use auditlog_traffic::TrafficGenerator;

    use super::*;

    /// The generator's events (and the samples) all take the fast path, and it stores them
    /// byte for byte as the general path does.
    #[test]
    fn both_paths_store_the_same_bytes() {
        let codec = EventCodec::new(Framing::SingleObject);
        let mut encoder = RowEncoder::default();
        let events = TrafficGenerator::new(11)
            .take(20_000)
            .chain(auditlog_event::testing::sample_events());
        let mut num_events = 0;
        for (offset, event) in events.enumerate() {
            let message = codec.encode_to_vec(&event).unwrap();
            let source = Source {
                partition: 1,
                offset: offset as i64,
            };
            let fast = Decoded::read(&codec, &message).unwrap();
            assert!(matches!(fast, Decoded::View(_)), "{event:?}");
            let mut fast_row = Vec::new();
            fast.encode_stored(&mut encoder, source, &mut fast_row);
            let general = codec.decode(&message).unwrap();
            let mut general_row = Vec::new();
            encoder.encode_stored(&general, source, &mut general_row);
            assert_eq!(fast_row, general_row, "{event:?}");
            assert_eq!(
                fast.time_micros(),
                auditlog_event::unix_micros_saturating(general.time)
            );
            num_events += 1;
        }
        assert!(num_events > 20_000);
    }

    #[test]
    fn what_the_general_path_refuses_is_refused_with_its_error() {
        let codec = EventCodec::new(Framing::SingleObject);
        let mut event = auditlog_event::testing::sample_event();
        event.status_code = 42;
        let message = codec.encode_to_vec(&event).unwrap();
        let error = Decoded::read(&codec, &message).unwrap_err();
        assert_eq!(error.to_string(), "status_code 42 is not an http status");
        let error = Decoded::read(&codec, &message[..12]).unwrap_err();
        assert_eq!(error.to_string(), "truncated datum at id");
    }
}
