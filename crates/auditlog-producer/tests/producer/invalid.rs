//! Invalid events are refused at the call, with the reason and the event id.

use auditlog_producer::event::limits::MAX_TEXT_BYTES;
use auditlog_producer::event::{Action, EventError, testing::sample_event};
use auditlog_producer::{Producer, ProducerError};
use uuid::Uuid;

// No broker is contacted: validation happens before anything is enqueued.
fn producer() -> Producer {
    Producer::builder("127.0.0.1:1", "never-used")
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_unknown_action_is_refused_with_its_value() {
    let producer = producer();
    let mut event = sample_event();
    event.action = Action::from_wire("explode");
    let error = producer.send(&event).await.unwrap_err();
    assert!(
        matches!(&error, ProducerError::Invalid { event_id, source: EventError::UnknownValue { kind: "action", .. } } if *event_id == event.id),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            r#"event {} is invalid: action has invalid value: "explode" is not a valid value"#,
            event.id
        )
    );
    assert_eq!(error.event_id(), Some(event.id));
    assert!(!error.is_retriable());
    assert_eq!(producer.in_flight(), 0);
}

#[tokio::test]
async fn an_oversized_field_is_refused_by_every_entry_point() {
    let producer = producer();
    let mut event = sample_event();
    event.resource_target = "x".repeat(MAX_TEXT_BYTES + 1);
    let expected = format!(
        "event {} is invalid: resource_target is 4097 bytes long, the limit is 4096",
        event.id
    );
    assert_eq!(
        producer.try_record(&event).unwrap_err().to_string(),
        expected
    );
    assert_eq!(
        producer.record(&event).await.unwrap_err().to_string(),
        expected
    );
    assert_eq!(
        producer.send(&event).await.unwrap_err().to_string(),
        expected
    );
    assert_eq!(producer.in_flight(), 0);
}

#[tokio::test]
async fn a_missing_id_is_refused() {
    let producer = producer();
    let mut event = sample_event();
    event.id = Uuid::nil();
    let error = producer.try_record(&event).unwrap_err();
    assert!(
        matches!(
            error,
            ProducerError::Invalid {
                source: EventError::NilId { field: "id" },
                ..
            }
        ),
        "{error:?}"
    );
    let mut event = sample_event();
    event.request_id = Uuid::nil();
    let error = producer.try_record(&event).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "event {} is invalid: request_id must not be the nil uuid",
            event.id
        )
    );
}

#[tokio::test]
async fn settings_the_sdk_fixes_cannot_be_overridden() {
    let error = Producer::builder("127.0.0.1:1", "t")
        .with_property("acks", "1")
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid producer setting acks: is fixed by the sdk: the sdk always uses acks=all"
    );
    let error = Producer::builder("127.0.0.1:1", "t")
        .with_property("no.such.property", "1")
        .build()
        .unwrap_err();
    assert!(matches!(error, ProducerError::Client { .. }), "{error:?}");
}
