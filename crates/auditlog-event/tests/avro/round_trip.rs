//! Events survive encoding and decoding, in both framings and as JSON, and damaged
//! messages fail cleanly.

use auditlog_event::testing::sample_event;
use auditlog_event::{AuditEvent, Diff, DiffEntry, EventCodec, EventError, Framing};
use proptest::prelude::*;
use serde_json::json;
use time::PrimitiveDateTime;

use crate::strategies;

fn codecs() -> [EventCodec; 2] {
    [
        EventCodec::new(Framing::SingleObject),
        EventCodec::new(Framing::Confluent { schema_id: 7 }),
    ]
}

fn round_trip(codec: &EventCodec, event: &AuditEvent) -> AuditEvent {
    codec.decode(&codec.encode_to_vec(event).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn events_round_trip_through_both_framings(event in strategies::event()) {
        for codec in codecs() {
            prop_assert_eq!(&round_trip(&codec, &event), &event);
        }
    }

    #[test]
    fn events_round_trip_through_json(event in strategies::event_with_valid_time()) {
        let text = serde_json::to_string(&event).unwrap();
        let parsed: AuditEvent = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(parsed, event);
    }

    #[test]
    fn damaged_messages_fail_without_panicking(
        event in strategies::event(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let codec = EventCodec::new(Framing::SingleObject);
        let mut message = codec.encode_to_vec(&event).unwrap();
        let position = position.index(message.len());
        message[position] = byte;
        // Either the change kept the message valid or the decoder says why not.
        let _outcome = codec.decode(&message);
        // A cut message is never mistaken for a complete one.
        let cut_at = position.max(1);
        prop_assert!(codec.decode(&message[..cut_at]).is_err());
    }
}

#[test]
fn extreme_times_round_trip() {
    for time in [
        PrimitiveDateTime::MIN.assume_utc(),
        PrimitiveDateTime::MAX
            .assume_utc()
            .truncate_to_microsecond(),
        time::OffsetDateTime::UNIX_EPOCH,
    ] {
        let event = AuditEvent {
            time,
            ..sample_event()
        };
        for codec in codecs() {
            assert_eq!(round_trip(&codec, &event), event);
        }
    }
}

#[test]
fn empty_and_large_diffs_round_trip() {
    let empty = AuditEvent {
        diff: Diff::new(),
        ..sample_event()
    };
    let large_diff: Diff = (0..8_000)
        .map(|index| {
            (
                format!("field_{index:05}"),
                DiffEntry::changed(json!(index), json!({"value": index, "text": "ü".repeat(3)})),
            )
        })
        .collect();
    let large = AuditEvent {
        diff: large_diff,
        ..sample_event()
    };
    for codec in codecs() {
        assert_eq!(round_trip(&codec, &empty), empty);
        assert_eq!(round_trip(&codec, &large), large);
    }
}

#[test]
fn every_strict_prefix_of_a_message_is_an_error() {
    let codec = EventCodec::new(Framing::SingleObject);
    let message = codec.encode_to_vec(&sample_event()).unwrap();
    for len in 0..message.len() {
        let error = codec.decode(&message[..len]).unwrap_err();
        assert!(
            matches!(
                error,
                EventError::Empty | EventError::TooShort { .. } | EventError::Truncated { .. }
            ),
            "prefix of {len} bytes: {error}"
        );
    }
}
