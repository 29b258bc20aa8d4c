//! Every committed schema version and the newest read each other, by apache-avro's
//! compatibility check and by actually decoding data written with one through the other.
//!
//! The synthetic schemas at the end show the checks have teeth: an added optional field
//! passes, a changed type or an added required field fails.

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value as AvroValue;
use auditlog_event::testing::sample_events;
use auditlog_event::{AuditEvent, EventCodec, Framing, newest_schema, schema_versions};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{SCHEMA_TEXT, strategies};

/// Writes `event` with `writer` (resolving the newest-schema record into it first) and
/// reads it back through `reader`.
fn write_then_read(writer: &Schema, reader: &Schema, event: &AuditEvent) -> AvroValue {
    let written = event
        .to_avro_value()
        .unwrap()
        .resolve(writer)
        .unwrap_or_else(|error| panic!("event does not fit the writer schema: {error}"));
    let datum = apache_avro::to_avro_datum(writer, written).unwrap();
    apache_avro::from_avro_datum(writer, &mut datum.as_slice(), Some(reader))
        .unwrap_or_else(|error| panic!("reader cannot read writer's data: {error}"))
}

fn check_versions_read_each_other(event: &AuditEvent) {
    let newest = newest_schema();
    for version in schema_versions() {
        let old = version.schema();
        let new = newest.schema();
        let from_old = write_then_read(old, new, event);
        write_then_read(new, old, event);
        let decoded = AuditEvent::from_avro_value(from_old).unwrap();
        assert_eq!(decoded.id, event.id, "v{}", version.version());
        if version.version() == newest.version() {
            assert_eq!(&decoded, event);
        }

        // The codec finds the writer by fingerprint and resolves it into the newest schema.
        let mut message = vec![0xC3, 0x01];
        message.extend_from_slice(&version.fingerprint().to_le_bytes());
        let written = event.to_avro_value().unwrap().resolve(old).unwrap();
        message.extend_from_slice(&apache_avro::to_avro_datum(old, written).unwrap());
        let codec = EventCodec::new(Framing::SingleObject);
        assert_eq!(codec.decode(&message).unwrap().id, event.id);
    }
}

#[test]
fn every_committed_version_and_the_newest_are_compatible_both_ways() {
    let newest = newest_schema().schema();
    for version in schema_versions() {
        SchemaCompatibility::can_read(version.schema(), newest)
            .unwrap_or_else(|error| panic!("newest cannot read v{}: {error}", version.version()));
        SchemaCompatibility::can_read(newest, version.schema())
            .unwrap_or_else(|error| panic!("v{} cannot read newest: {error}", version.version()));
    }
}

#[test]
fn every_committed_version_decodes_the_samples() {
    for event in sample_events() {
        check_versions_read_each_other(&event);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_committed_version_decodes_random_events(event in strategies::event()) {
        check_versions_read_each_other(&event);
    }
}

/// The newest schema with `change` applied to its JSON.
fn changed_schema(change: impl FnOnce(&mut Vec<Value>)) -> Schema {
    let mut json: Value = serde_json::from_str(SCHEMA_TEXT).unwrap();
    let fields = json["fields"].as_array_mut().unwrap();
    change(fields);
    Schema::parse_str(&json.to_string()).unwrap()
}

#[test]
fn adding_an_optional_field_is_compatible_both_ways() {
    let newest = newest_schema().schema();
    let future = changed_schema(|fields| {
        fields.push(json!({"name": "session_id", "type": ["null", "string"], "default": null}));
    });
    SchemaCompatibility::can_read(newest, &future).unwrap();
    SchemaCompatibility::can_read(&future, newest).unwrap();
    for event in sample_events() {
        let read = write_then_read(newest, &future, &event);
        let AvroValue::Record(fields) = read else {
            panic!("a record");
        };
        assert_eq!(
            fields.last().unwrap(),
            &(
                "session_id".to_owned(),
                AvroValue::Union(0, Box::new(AvroValue::Null))
            )
        );
    }
}

#[test]
fn breaking_changes_are_caught() {
    let newest = newest_schema().schema();
    let retyped = changed_schema(|fields| {
        let status = fields
            .iter_mut()
            .find(|field| field["name"] == "status_code")
            .unwrap();
        status["type"] = json!("string");
    });
    assert!(SchemaCompatibility::can_read(newest, &retyped).is_err());
    assert!(SchemaCompatibility::can_read(&retyped, newest).is_err());

    let required_addition = changed_schema(|fields| {
        fields.push(json!({"name": "tenant", "type": "string"}));
    });
    assert!(SchemaCompatibility::can_read(newest, &required_addition).is_err());
}
