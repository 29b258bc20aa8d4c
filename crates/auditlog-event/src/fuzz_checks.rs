//! The checks behind the decoder's fuzz targets (`fuzz/`), shared with the corpus replay in
//! `tests/fuzz_corpus.rs` so that `make test` runs exactly what the fuzzer runs, without
//! nightly or cargo-fuzz.
//!
//! Each check takes arbitrary bytes and panics when a property fails, which is how libFuzzer
//! learns of a finding.

use std::path::{Path, PathBuf};

use crate::avro::decode_datum;
use crate::avro_value::decode_generic;
use crate::{EventCodec, Framing, newest_schema, schema_versions};

/// The Confluent schema registry id the Confluent target's codec gives the newest schema;
/// the seeds are written with it. Older versions get ids `1..` by version number.
pub const CONFLUENT_SCHEMA_ID: u32 = 100;

/// A single-object message, as the ingester reads it: decodes or fails, never panics, and a
/// decoded event survives re-encoding.
pub fn check_single_object(message: &[u8]) {
    check_codec(&EventCodec::new(Framing::SingleObject), message);
}

/// A Confluent-framed message, read by a codec that knows an id for every committed version.
pub fn check_confluent(message: &[u8]) {
    check_codec(&confluent_codec(), message);
}

/// The codec of the Confluent target: the newest schema as [`CONFLUENT_SCHEMA_ID`], every
/// committed version `N` as id `N`.
pub fn confluent_codec() -> EventCodec {
    schema_versions().iter().fold(
        EventCodec::new(Framing::Confluent {
            schema_id: CONFLUENT_SCHEMA_ID,
        }),
        |codec, version| {
            codec
                .with_schema_id(version.version(), version.version())
                .expect("every committed version is known")
        },
    )
}

/// Every file of fuzz target `target`'s committed corpus (`fuzz/seeds/<target>/`), sorted by
/// path, for the crates' corpus-replay tests. Panics if the directory is missing or nearly
/// empty, so a moved corpus cannot pass silently.
pub fn committed_seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable directory entry").path();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, bytes)
        })
        .collect();
    assert!(seeds.len() >= 10, "{}: too few seeds", dir.display());
    seeds.sort();
    seeds
}

fn check_codec(codec: &EventCodec, message: &[u8]) {
    check_view_agrees(codec, message);
    let Ok(event) = codec.decode(message) else {
        return;
    };
    let encoded = codec
        .encode_to_vec(&event)
        .unwrap_or_else(|error| panic!("a decoded event must re-encode: {error}\n{event:?}"));
    let again = codec
        .decode(&encoded)
        .unwrap_or_else(|error| panic!("a re-encoded event must decode: {error}\n{event:?}"));
    assert_eq!(again, event, "decode(encode(event)) changed the event");
    // The encoder is canonical: re-encoding the re-decoded event gives the same bytes.
    assert_eq!(codec.encode_to_vec(&again).ok(), Some(encoded));
    check_paths_agree(message);
}

/// A view is given only for a message that decodes into a valid event, and it holds that
/// event's fields, its JSON fields exactly as serde_json writes them.
pub fn check_view_agrees(codec: &EventCodec, message: &[u8]) {
    let Some(view) = codec.decode_view(message) else {
        return;
    };
    let event = codec
        .decode(message)
        .unwrap_or_else(|error| panic!("a view of a message that does not decode: {error}"));
    event
        .validate_allow_unknown()
        .unwrap_or_else(|error| panic!("a view of an invalid event: {error}\n{event:?}"));
    if let Some(field) = view.first_difference(&event) {
        panic!("the view and the event differ at {field}\n{view:?}\n{event:?}");
    }
}

/// The fast decoder and the schema-driven (apache-avro) one agree on every datum written with
/// the newest schema: the same event, or both an error.
fn check_paths_agree(message: &[u8]) {
    let header_len = match message.first() {
        Some(0xC3) => 10,
        Some(0x00) => 5,
        _ => return,
    };
    let Some(datum) = message.get(header_len..) else {
        return;
    };
    let fast = decode_datum(datum);
    let generic = decode_generic(newest_schema(), datum);
    match (&fast, &generic) {
        (Ok(fast), Ok(generic)) => assert_eq!(fast, generic, "the two decoders disagree"),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "one decoder accepted what the other refused: fast {fast:?}, generic {generic:?}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_events;

    #[test]
    fn sample_events_pass_both_checks() {
        for event in sample_events() {
            let single = EventCodec::new(Framing::SingleObject)
                .encode_to_vec(&event)
                .unwrap();
            check_single_object(&single);
            let confluent = confluent_codec().encode_to_vec(&event).unwrap();
            check_confluent(&confluent);
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for message in [&[][..], &[0xC3], &[0x00, 0, 0, 0, 100], b"{\"id\":1}"] {
            check_single_object(message);
            check_confluent(message);
        }
    }
}
