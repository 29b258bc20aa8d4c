//! The Rust types, the hand-rolled codec and the committed schema describe the same bytes.

use apache_avro::types::Value as AvroValue;
use apache_avro::{GenericSingleObjectReader, GenericSingleObjectWriter, Schema};
use auditlog_event::testing::{sample_event, sample_events};
use auditlog_event::{AuditEvent, EventCodec, Framing, newest_schema};
use proptest::prelude::*;

use crate::strategies;
use crate::{SINGLE_OBJECT_HEADER_LEN, schema};

fn fast_datum(event: &AuditEvent) -> Vec<u8> {
    let message = EventCodec::new(Framing::SingleObject)
        .encode_to_vec(event)
        .unwrap();
    message[SINGLE_OBJECT_HEADER_LEN..].to_vec()
}

/// apache-avro validates the value against the schema before writing, so this fails for
/// any field whose name, type or optionality differs from the `.avsc`.
fn apache_datum(schema: &Schema, event: &AuditEvent) -> Vec<u8> {
    apache_avro::to_avro_datum(schema, event.to_avro_value().unwrap()).unwrap()
}

fn check_agreement(schema: &Schema, event: &AuditEvent) -> Result<(), TestCaseError> {
    let fast = fast_datum(event);
    let apache = apache_datum(schema, event);
    prop_assert_eq!(&fast, &apache, "fast path and apache-avro differ");

    // apache-avro's generic decoder, driven by the .avsc, reads the fast path's bytes
    // into exactly the record the Rust type maps to.
    let decoded = apache_avro::from_avro_datum(schema, &mut fast.as_slice(), None).unwrap();
    prop_assert_eq!(&decoded, &event.to_avro_value().unwrap());
    prop_assert_eq!(&AuditEvent::from_avro_value(decoded).unwrap(), event);

    // And the fast decoder reads apache-avro's bytes.
    let mut message = EventCodec::new(Framing::SingleObject)
        .encode_to_vec(event)
        .unwrap();
    message.truncate(SINGLE_OBJECT_HEADER_LEN);
    message.extend_from_slice(&apache);
    let codec = EventCodec::new(Framing::SingleObject);
    prop_assert_eq!(&codec.decode(&message).unwrap(), event);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_path_is_byte_identical_to_apache_avro_for_random_events(event in strategies::event()) {
        check_agreement(&schema(), &event)?;
    }
}

#[test]
fn fast_path_agrees_with_apache_avro_on_the_samples() {
    let schema = schema();
    for event in sample_events() {
        check_agreement(&schema, &event).unwrap();
    }
}

#[test]
fn schema_fields_are_the_events_json_fields_in_order() {
    let Schema::Record(record) = schema() else {
        panic!("the schema is a record");
    };
    let schema_fields: Vec<&str> = record
        .fields
        .iter()
        .map(|field| field.name.as_str())
        .collect();
    let AvroValue::Record(value_fields) = sample_event().to_avro_value().unwrap() else {
        panic!("an event is a record");
    };
    let value_names: Vec<&str> = value_fields.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(value_names, schema_fields);

    // The JSON form (query side, CLI) uses the same snake_case names.
    let json = serde_json::to_value(sample_event()).unwrap();
    let mut json_names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted_schema_fields = schema_fields.clone();
    json_names.sort_unstable();
    sorted_schema_fields.sort_unstable();
    assert_eq!(json_names, sorted_schema_fields);
}

#[test]
fn the_compiled_in_schema_is_the_file() {
    assert_eq!(auditlog_event::AUDIT_EVENT_SCHEMA, crate::SCHEMA_TEXT);
    assert_eq!(newest_schema().schema(), &schema());
}

#[test]
fn single_object_framing_matches_apache_avros_single_object_writer_and_reader() {
    let schema = schema();
    let codec = EventCodec::new(Framing::SingleObject);
    let mut writer = GenericSingleObjectWriter::new_with_capacity(&schema, 1024).unwrap();
    let reader = GenericSingleObjectReader::new(schema.clone()).unwrap();
    for event in sample_events() {
        let ours = codec.encode_to_vec(&event).unwrap();
        let mut theirs = Vec::new();
        writer
            .write_value(event.to_avro_value().unwrap(), &mut theirs)
            .unwrap();
        assert_eq!(ours, theirs);
        let read_back = reader.read_value(&mut ours.as_slice()).unwrap();
        assert_eq!(AuditEvent::from_avro_value(read_back).unwrap(), event);
    }
}
