use serde_json::{Value, json};

use super::*;
use crate::limits::MIN_TIME;
use crate::testing::{sample_event, sample_events};
use crate::{AuditEvent, DiffEntry, EventCodec, Framing};

fn message(event: &AuditEvent) -> Vec<u8> {
    EventCodec::new(Framing::SingleObject)
        .encode_to_vec(event)
        .unwrap()
}

#[test]
fn valid_events_of_the_newest_schema_have_a_view_that_holds_them() {
    let codec = EventCodec::new(Framing::SingleObject);
    for event in sample_events() {
        let message = message(&event);
        let view = codec.decode_view(&message).expect("a view");
        assert_eq!(view.first_difference(&event), None, "{event:?}");
        assert_eq!(view.diff_len(), event.diff.len());
    }
}

#[test]
fn the_diff_json_is_what_serde_json_writes_for_the_diff() {
    let mut event = sample_event();
    event.diff.insert("token", DiffEntry::secret());
    event.diff.insert(
        "quote\"and\\back\u{1}",
        DiffEntry::changed(json!({"b": [1, 2.5], "a": null}), json!("é\n")),
    );
    let message = message(&event);
    let view = EventCodec::new(Framing::SingleObject)
        .decode_view(&message)
        .unwrap();
    let mut text = Vec::new();
    view.write_diff_json(&mut text);
    assert_eq!(text, serde_json::to_vec(&event.diff).unwrap());
    let empty = AuditEvent {
        diff: crate::Diff::new(),
        ..sample_event()
    };
    let message = self::message(&empty);
    let view = EventCodec::new(Framing::SingleObject)
        .decode_view(&message)
        .unwrap();
    let mut text = Vec::new();
    view.write_diff_json(&mut text);
    assert_eq!(text, b"{}");
}

/// Rewrites the JSON text `from` in the datum to `to` (same length, so no prefix changes).
fn replaced(message: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = message
        .windows(from.len())
        .position(|window| window == from.as_bytes())
        .expect("the text is in the message");
    let mut out = message.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

#[test]
fn json_in_another_form_and_invalid_events_take_the_general_path() {
    let codec = EventCodec::new(Framing::SingleObject);
    let mut event = sample_event();
    event.additional_fields = serde_json::Map::new();
    event
        .additional_fields
        .insert("ab".into(), Value::from(100));
    event.diff = crate::Diff::new();
    event
        .diff
        .insert("f", DiffEntry::changed(json!(300), json!("x")));
    let message = message(&event);
    assert!(codec.decode_view(&message).is_some());
    // Valid, but stored differently from how it came: the general path rewrites it.
    for to in [r#"{"ab":1e2}"#, r#"{"ab": 99}"#] {
        let changed = replaced(&message, r#"{"ab":100}"#, to);
        assert!(codec.decode_view(&changed).is_none(), "{to}");
        assert!(codec.decode(&changed).is_ok());
    }
    let changed = replaced(&message, "300", "3e2");
    assert!(codec.decode_view(&changed).is_none());
    assert!(codec.decode(&changed).is_ok());
    // Not an object, invalid JSON: refused by the general path.
    for to in [r#"["ab",100]"#, r#"{"ab":100,"#] {
        let changed = replaced(&message, r#"{"ab":100}"#, to);
        assert!(codec.decode_view(&changed).is_none(), "{to}");
        assert!(codec.decode(&changed).is_err(), "{to}");
    }

    let invalid = [
        AuditEvent {
            status_code: 42,
            ..sample_event()
        },
        AuditEvent {
            id: uuid::Uuid::nil(),
            ..sample_event()
        },
        AuditEvent {
            resource_target: "t".repeat(MAX_TEXT_BYTES + 1),
            ..sample_event()
        },
        AuditEvent {
            user_agent: "a".repeat(MAX_USER_AGENT_CHARS + 1),
            ..sample_event()
        },
        AuditEvent {
            time: MIN_TIME - time::Duration::microseconds(1),
            ..sample_event()
        },
        AuditEvent {
            build_reason: Some(crate::BuildReason::Cli),
            ..crate::testing::sample_event_for(ResourceType::Template, Action::Write, 200)
        },
    ];
    for event in invalid {
        assert!(event.validate_allow_unknown().is_err());
        assert!(
            codec.decode_view(&self::message(&event)).is_none(),
            "{event:?}"
        );
    }
    let mut secret = sample_event();
    secret.diff.insert(
        "token",
        DiffEntry {
            old: Value::Null,
            new: json!("leaked"),
            secret: true,
        },
    );
    assert!(codec.decode_view(&self::message(&secret)).is_none());
}

#[test]
fn sizes_at_the_limits_agree_with_validation() {
    let codec = EventCodec::new(Framing::SingleObject);
    for extra in [0, 1] {
        for len in (MAX_ADDITIONAL_FIELDS_BYTES - 16)..=(MAX_ADDITIONAL_FIELDS_BYTES - 8 + extra) {
            let mut event = sample_event();
            event.additional_fields = serde_json::Map::new();
            event
                .additional_fields
                .insert("k".into(), Value::String("x".repeat(len - 8)));
            let message = message(&event);
            assert_eq!(
                codec.decode_view(&message).is_some(),
                event.validate_allow_unknown().is_ok(),
                "{len}"
            );
        }
    }
    for len in (MAX_DIFF_BYTES - 40)..(MAX_DIFF_BYTES + 10) {
        let mut event = sample_event();
        event.diff = crate::Diff::new();
        event.diff.insert(
            "blob",
            DiffEntry::changed(Value::Null, Value::String("x".repeat(len - 20))),
        );
        let message = message(&event);
        assert_eq!(
            codec.decode_view(&message).is_some(),
            event.validate_allow_unknown().is_ok(),
            "{len}"
        );
    }
}

#[test]
fn build_reason_rule_matches_validation() {
    for resource_type in ["workspace", "workspace_build", "template", "spaceship"] {
        for action in ["create", "start", "write", "explode"] {
            let mut event = crate::testing::sample_event_for(
                ResourceType::from_wire(resource_type),
                Action::from_wire(action),
                200,
            );
            event.build_reason = Some(crate::BuildReason::Cli);
            assert_eq!(
                may_have_build_reason(resource_type, action),
                event.validate_allow_unknown().is_ok(),
                "{resource_type} {action}"
            );
        }
    }
}

#[test]
fn time_bounds_in_micros_are_the_limits() {
    assert_eq!(
        MIN_TIME_MICROS,
        unix_micros_saturating(crate::limits::MIN_TIME)
    );
    assert_eq!(
        MAX_TIME_MICROS,
        unix_micros_saturating(crate::limits::MAX_TIME)
    );
}
