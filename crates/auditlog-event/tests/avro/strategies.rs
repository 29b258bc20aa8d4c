//! Proptest strategies for random audit events, including values no real producer would
//! write (unknown enum values, control characters, times far from now).

use std::collections::BTreeMap;
use std::net::IpAddr;

use auditlog_event::limits::{MAX_TIME, MIN_TIME};
use auditlog_event::{
    Action, Actor, AuditEvent, BuildReason, Diff, DiffEntry, Organization, ResourceType,
};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

/// Any Unicode text, control characters included.
pub fn text(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

pub fn uuid() -> impl Strategy<Value = Uuid> {
    prop_oneof![
        1 => Just(Uuid::nil()),
        1 => Just(Uuid::max()),
        8 => any::<u128>().prop_map(Uuid::from_u128),
    ]
}

fn unix_micros(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1000).unwrap()
}

/// Microseconds since the epoch, anywhere `time` can represent (years -9999 to 9999).
pub fn any_time() -> impl Strategy<Value = OffsetDateTime> {
    time_between(
        PrimitiveDateTime::MIN.assume_utc(),
        PrimitiveDateTime::MAX.assume_utc(),
    )
}

/// Times the validation accepts, which is also what JSON (RFC 3339) can express.
pub fn valid_time() -> impl Strategy<Value = OffsetDateTime> {
    time_between(MIN_TIME, MAX_TIME)
}

fn time_between(
    earliest: OffsetDateTime,
    latest: OffsetDateTime,
) -> impl Strategy<Value = OffsetDateTime> {
    let earliest = unix_micros(earliest);
    let latest = unix_micros(latest);
    prop_oneof![
        1 => Just(earliest),
        1 => Just(latest),
        1 => Just(0),
        1 => Just(-1),
        6 => earliest..=latest,
    ]
    .prop_map(|micros| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap()
    })
}

pub fn resource_type() -> impl Strategy<Value = ResourceType> {
    prop_oneof![
        4 => select(ResourceType::ALL.to_vec()),
        1 => text(12).prop_map(|text| ResourceType::from_wire(&text)),
    ]
}

pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => select(Action::ALL.to_vec()),
        1 => text(12).prop_map(|text| Action::from_wire(&text)),
    ]
}

pub fn build_reason() -> impl Strategy<Value = Option<BuildReason>> {
    prop_oneof![
        2 => Just(None),
        2 => select(BuildReason::ALL.to_vec()).prop_map(Some),
        1 => text(12).prop_map(|text| Some(BuildReason::from_wire(&text))),
    ]
}

/// Any JSON value; floats are finite because JSON has no others.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("json numbers are finite", |number| number.is_finite())
            .prop_map(Value::from),
        text(16).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            json_object_of(inner).prop_map(Value::Object),
        ]
    })
}

fn json_object_of(
    values: impl Strategy<Value = Value>,
) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(text(8), values, 0..4)
        .prop_map(|entries| entries.into_iter().collect())
}

pub fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    json_object_of(json_value())
}

pub fn diff_entry() -> impl Strategy<Value = DiffEntry> {
    prop_oneof![
        3 => (json_value(), json_value()).prop_map(|(old, new)| DiffEntry::changed(old, new)),
        1 => Just(DiffEntry::secret()),
    ]
}

/// Mostly small diffs, sometimes empty, sometimes hundreds of fields.
pub fn diff() -> impl Strategy<Value = Diff> {
    prop_oneof![
        1 => Just(BTreeMap::new()),
        6 => prop::collection::btree_map(text(12), diff_entry(), 1..6),
        1 => prop::collection::btree_map(text(12), diff_entry(), 100..300),
    ]
    .prop_map(|entries| entries.into_iter().collect::<Diff>())
}

pub fn actor() -> impl Strategy<Value = Actor> {
    (uuid(), text(16), text(24), text(24)).prop_map(|(id, username, email, name)| Actor {
        id,
        username,
        email,
        name,
    })
}

pub fn organization() -> impl Strategy<Value = Organization> {
    (uuid(), text(16), text(24), text(24)).prop_map(|(id, name, display_name, icon)| Organization {
        id,
        name,
        display_name,
        icon,
    })
}

/// Any event the codec must carry, valid or not, with times anywhere `time` reaches.
pub fn event() -> impl Strategy<Value = AuditEvent> {
    event_at(any_time())
}

/// Any event with a time the validation and JSON accept.
pub fn event_with_valid_time() -> impl Strategy<Value = AuditEvent> {
    event_at(valid_time())
}

fn event_at(time: impl Strategy<Value = OffsetDateTime>) -> impl Strategy<Value = AuditEvent> {
    let who_and_when = (
        uuid(),
        time,
        uuid(),
        any::<Option<IpAddr>>(),
        text(64),
        prop::option::of(actor()),
        prop::option::of(organization()),
    );
    let what = (
        resource_type(),
        uuid(),
        text(32),
        text(32),
        action(),
        diff(),
        any::<i32>(),
        json_object(),
        build_reason(),
    );
    (who_and_when, what).prop_map(
        |(
            (id, time, request_id, ip, user_agent, user, organization),
            (
                resource_type,
                resource_id,
                resource_target,
                resource_icon,
                action,
                diff,
                status_code,
                additional_fields,
                build_reason,
            ),
        )| AuditEvent {
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
        },
    )
}
