use super::*;

fn parse(text: &str) -> StreamFile {
    toml::from_str(text).unwrap()
}

const WEBHOOK: &str = r#"
[[sinks]]
name = "siem"
kind = "webhook"
url = "http://127.0.0.1:1/hook"
secret = "sixteen bytes at least"
filter = "resource_type:workspace action:delete"
format = "ocsf"
"#;

#[test]
fn a_valid_sink_is_read_with_its_defaults() {
    let sinks = sinks_from_file(&parse(WEBHOOK), &[]).unwrap();
    assert_eq!(sinks.len(), 1);
    let sink = &sinks[0];
    assert_eq!(sink.name, "siem");
    assert_eq!(sink.group(), "auditlog-stream-siem");
    assert_eq!(sink.format, Format::Ocsf);
    assert_eq!(sink.destination.kind(), "webhook");
    assert_eq!(sink.batch, BatchLimits::default());
    assert_eq!(
        sink.filter.action.as_ref().map(|action| action.as_str()),
        Some("delete")
    );
}

#[test]
fn archives_and_indexes_batch_by_their_kinds_defaults_unless_told() {
    let text = r#"
[[sinks]]
name = "archive"
kind = "s3"
url = "s3://audit-archive/prod"
endpoint = "http://127.0.0.1:8333"
access_key = "archiver"
secret_key = "archiver's secret"

[[sinks]]
name = "index"
kind = "opensearch"
url = "http://127.0.0.1:9200"

[[sinks]]
name = "told"
kind = "s3"
url = "s3://audit-archive/told"
endpoint = "http://127.0.0.1:8333"
access_key = "archiver"
secret_key = "archiver's secret"
batch_events = 7
batch_max_age_ms = 250
"#;
    let sinks = sinks_from_file(&parse(text), &[]).unwrap();
    let batch = |name: &str| sinks.iter().find(|sink| sink.name == name).unwrap().batch;
    assert_eq!(
        batch("archive"),
        BatchLimits {
            max_events: 10_000,
            max_bytes: 32 * 1024 * 1024,
            max_age: Duration::from_secs(60),
        }
    );
    assert_eq!(batch("index").max_events, 2_000);
    assert_eq!(batch("index").max_age, Duration::from_secs(1));
    assert_eq!(
        batch("told"),
        BatchLimits {
            max_events: 7,
            max_bytes: 32 * 1024 * 1024,
            max_age: Duration::from_millis(250),
        }
    );
}

#[test]
fn an_unknown_kind_is_named() {
    let file = parse("[[sinks]]\nname = \"x\"\nkind = \"kafka\"\n");
    let error = sinks_from_file(&file, &[]).unwrap_err().to_string();
    assert!(error.contains("unknown kind \"kafka\""), "{error}");
    let file = parse("[[sinks]]\nname = \"x\"\nkind = \"s3\"\n");
    let error = sinks_from_file(&file, &[]).unwrap_err().to_string();
    assert!(
        error.contains("s3 settings: missing field `url`"),
        "{error}"
    );
}

#[test]
fn a_bad_filter_gets_the_apis_validations() {
    let file = parse(&WEBHOOK.replace("action:delete", "action:explode colour:red"));
    let error = sinks_from_file(&file, &[]).unwrap_err().to_string();
    assert!(
        error.contains(
            r#"action: Query param "action" has invalid value: "explode" is not a valid value"#
        ),
        "{error}"
    );
    assert!(
        error.contains(r#""colour" is not a valid query param"#),
        "{error}"
    );
    let file = parse(&WEBHOOK.replace("action:delete", "username:me"));
    let error = sinks_from_file(&file, &[]).unwrap_err().to_string();
    assert!(error.contains("no caller is known"), "{error}");
}

#[test]
fn names_are_unique_and_well_formed() {
    let twice = format!("{WEBHOOK}{WEBHOOK}");
    let error = sinks_from_file(&parse(&twice), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("used by two sinks"), "{error}");
    let file = parse(&WEBHOOK.replace("name = \"siem\"", "name = \"a b\""));
    assert!(sinks_from_file(&file, &[]).is_err());
}

#[test]
fn unknown_settings_and_formats_are_errors() {
    let file = parse(&WEBHOOK.replace("secret =", "secrett ="));
    let error = sinks_from_file(&file, &[]).unwrap_err().to_string();
    assert!(error.contains("secrett"), "{error}");
    let file = parse(&WEBHOOK.replace("\"ocsf\"", "\"cef\""));
    let error = sinks_from_file(&file, &[]).unwrap_err().to_string();
    assert!(error.contains("format"), "{error}");
}

#[test]
fn only_selects_existing_sinks() {
    let two = format!("{WEBHOOK}{}", WEBHOOK.replace("siem", "other"));
    let file = parse(&two);
    let sinks = sinks_from_file(&file, &["other".to_owned()]).unwrap();
    assert_eq!(sinks.len(), 1);
    assert_eq!(sinks[0].name, "other");
    let error = sinks_from_file(&file, &["nope".to_owned()])
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"nope\" is not configured"), "{error}");
    assert!(sinks_from_file(&StreamFile::default(), &[]).is_err());
}

#[test]
fn the_dead_letter_topic_defaults_from_the_topic_or_is_checked() {
    let sinks = sinks_from_file(&parse(WEBHOOK), &[]).unwrap();
    assert_eq!(
        sinks[0].dead_letter_topic("audit-events"),
        "audit-events-stream-siem-dlq"
    );
    let named = WEBHOOK.replace("format =", "dead_letter_topic = \"siem-refused\"\nformat =");
    let sinks = sinks_from_file(&parse(&named), &[]).unwrap();
    assert_eq!(sinks[0].dead_letter_topic("audit-events"), "siem-refused");
    let bad = WEBHOOK.replace("format =", "dead_letter_topic = \"no way\"\nformat =");
    let error = sinks_from_file(&parse(&bad), &[]).unwrap_err().to_string();
    assert!(error.contains("dead_letter_topic"), "{error}");
}

#[test]
fn the_default_dead_letter_topic_names_the_source_and_the_sink() {
    assert_eq!(
        default_dead_letter_topic("audit-events", "siem"),
        "audit-events-stream-siem-dlq"
    );
}
