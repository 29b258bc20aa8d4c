use super::*;
use crate::format::Format;
use crate::sink::Record;
use uuid::Uuid;

fn config(text: &str) -> Result<OpenSearchConfig, StreamError> {
    OpenSearchConfig::from_settings("search", toml::from_str(text).unwrap())
}

#[test]
fn events_go_to_their_months_index_under_their_id() {
    let config = config(r#"url = "http://127.0.0.1:9200/""#).unwrap();
    let id = Uuid::from_u128(7);
    let batch = Batch {
        topic: "t".into(),
        partition: 0,
        first_offset: 0,
        last_offset: 1,
        records: vec![Record {
            offset: 1,
            id,
            time: time::macros::datetime!(2026-01-31 23:59:59 -02:00),
            json: br#"{"id":"x"}"#.to_vec(),
        }],
        filtered: 1,
        malformed: 0,
        format: Format::Coder,
    };
    let body = String::from_utf8(bulk_body(&config, &batch)).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let action: Value = serde_json::from_str(lines[0]).unwrap();
    // 23:59 at -02:00 is February in UTC.
    assert_eq!(action["index"]["_index"], "audit-events-2026.02");
    assert_eq!(action["index"]["_id"], id.to_string());
    assert_eq!(lines[1], r#"{"id":"x"}"#);
    assert_eq!(config.template()["index_patterns"][0], "audit-events-*");
}

#[test]
fn failed_items_are_never_taken_for_success() {
    assert!(check_bulk_answer(br#"{"errors":false,"items":[]}"#).is_ok());
    let busy = br#"{"errors":true,"items":[{"index":{"_id":"a","status":201}},
        {"index":{"_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#;
    let error = check_bulk_answer(busy).unwrap_err();
    assert_eq!(error.class, crate::FailureClass::Transient);
    assert!(error.message.contains("b 429"), "{error}");
    let refused = br#"{"errors":true,"items":[{"index":{"_id":"c","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}]}"#;
    let error = check_bulk_answer(refused).unwrap_err();
    assert_eq!(error.class, crate::FailureClass::Rejected);
    assert!(
        error
            .message
            .contains("c 400 mapper_parsing_exception: bad"),
        "{error}"
    );
}

#[test]
fn prefixes_and_credentials_are_checked() {
    assert!(config("url = \"http://h:9200\"\nindex_prefix = \"Audit\"").is_err());
    let error = config("url = \"http://h:9200\"\nusername = \"u\"").unwrap_err();
    assert!(error.to_string().contains("together"), "{error}");
    let config = config("url = \"http://h:9200\"\nusername = \"u\"\npassword = \"p\"").unwrap();
    assert!(!format!("{config:?}").contains("dTpw"));
}
