//! Integration tests of the Avro binding, built as one binary: the Rust types agree with
//! the committed schema, the fast path agrees with apache-avro byte for byte, events round-trip
//! through both framings, and every committed schema version reads every other.

mod agreement;
mod evolution;
mod round_trip;
mod strategies;

/// The newest schema, loaded at compile time from the file that is the source of truth.
const SCHEMA_TEXT: &str = include_str!("../../../../schemas/audit_event.avsc");

/// Length of the single-object header: `C3 01` and the 8-byte fingerprint.
const SINGLE_OBJECT_HEADER_LEN: usize = 10;

fn schema() -> apache_avro::Schema {
    apache_avro::Schema::parse_str(SCHEMA_TEXT).unwrap()
}
