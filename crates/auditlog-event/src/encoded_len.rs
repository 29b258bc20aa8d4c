//! Encoded lengths, computed without encoding: the JSON text length of a value (exact, and a
//! cheap upper bound) and the byte length of an Avro varint length prefix.
//!
//! Validation needs these to hold an event to the size limits that the encoded Avro datum
//! must meet, without writing the datum.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value};

/// Length of the JSON text of `value`, without building the text.
pub(crate) fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    // Serializing JSON values cannot fail (keys are strings, numbers finite) and the
    // counter never does, so a failure can only be a bug; count it as too long.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// An upper bound of [`json_len`], computed without formatting anything.
///
/// Validation compares this with the limits first and counts exactly only when the bound
/// exceeds them, so typical events never pay for serializing their JSON twice.
pub(crate) fn json_len_bound(value: &Value) -> usize {
    // The longest numbers serde_json writes: "-9223372036854775808", "-1.7976931348623157e308".
    const MAX_NUMBER_LEN: usize = 24;
    match value {
        Value::Null | Value::Bool(_) => "false".len(),
        Value::Number(_) => MAX_NUMBER_LEN,
        Value::String(text) => json_string_len_bound(text),
        Value::Array(items) => {
            2 + items
                .iter()
                .map(|item| json_len_bound(item) + 1)
                .sum::<usize>()
        }
        Value::Object(object) => json_object_len_bound(object),
    }
}

/// An upper bound of the JSON text length of an object; see [`json_len_bound`].
pub(crate) fn json_object_len_bound(object: &Map<String, Value>) -> usize {
    // Each member adds a colon and a comma besides its key and value.
    2 + object
        .iter()
        .map(|(key, value)| json_string_len_bound(key) + 2 + json_len_bound(value))
        .sum::<usize>()
}

fn json_string_len_bound(text: &str) -> usize {
    // "\u001f" is the longest escape of one byte.
    const MAX_ESCAPED_BYTE_LEN: usize = 6;
    2 + MAX_ESCAPED_BYTE_LEN * text.len()
}

/// Bytes of the zig-zag varint of a length.
pub(crate) fn varint_len(len: usize) -> usize {
    let mut zigzagged = (len as u64) << 1;
    let mut bytes = 1;
    while zigzagged >= 0x80 {
        zigzagged >>= 7;
        bytes += 1;
    }
    bytes
}

struct ByteCounter(usize);

impl Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_event;

    #[test]
    fn json_len_bound_is_never_below_the_length() {
        let values = [
            serde_json::json!(null),
            serde_json::json!(i64::MIN),
            serde_json::json!(u64::MAX),
            serde_json::json!(-f64::MAX),
            serde_json::json!(f64::MIN_POSITIVE),
            serde_json::json!("\u{1f}\"\\é\u{10ffff}"),
            serde_json::json!({"a": [1, {"b": "\u{0}"}], "": []}),
        ];
        for value in values {
            assert!(json_len_bound(&value) >= json_len(&value), "{value}");
            if let Value::Object(object) = &value {
                assert!(json_object_len_bound(object) >= json_len(object));
            }
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn json_len_bound_holds_for_random_values(value in any_json()) {
            proptest::prop_assert!(json_len_bound(&value) >= json_len(&value));
            proptest::prop_assert_eq!(json_len(&value), serde_json::to_vec(&value).unwrap().len());
        }
    }

    #[test]
    fn json_len_is_the_serialized_length() {
        let event = sample_event();
        assert_eq!(
            json_len(&event.additional_fields),
            serde_json::to_vec(&event.additional_fields).unwrap().len()
        );
    }
}
