//! `auditlog query --parse` and `--sql`, which need no ClickHouse: the filter as Coder's
//! rules read it (or Coder's error body and exit code 2), and the statement with its
//! placeholders and parameters.

use std::process::{Command, Output};

fn auditlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(args)
        // A dead ClickHouse URL: neither --parse nor --sql may need one.
        .env("AUDITLOG_CLICKHOUSE_URL", "http://127.0.0.1:9")
        .env("AUDITLOG_LOG", "warn")
        .env_remove("AUDITLOG_CONFIG")
        .output()
        .expect("run auditlog")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// (filter, exit code, exact stdout line)
const PARSE_CASES: &[(&str, i32, &str)] = &[
    ("", 0, "{}"),
    ("   ", 0, "{}"),
    (
        "Workspace action:delete username:Alice date_from:2026-01-01",
        0,
        r#"{"resource_type":"workspace","action":"delete","username":"alice","date_from":"2026-01-01"}"#,
    ),
    (
        "username:me organization:Acme build_reason:AUTOSTART",
        0,
        r#"{"username":"me","organization":"acme","build_reason":"autostart"}"#,
    ),
    (
        "resource_id:{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11} request_id:A0EEBC999C0B4EF8BB6D6BB9BD380A12",
        0,
        r#"{"resource_id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","request_id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"}"#,
    ),
    (
        r#"request_id:"urn:uuid:A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11""#,
        0,
        r#"{"request_id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#,
    ),
    (
        r#"resource_target:"a:b" "username":Bob email:Bob@Example.com"#,
        0,
        r#"{"resource_target":"a:b","username":"bob","email":"bob@example.com"}"#,
    ),
    (
        r#"username:"" date_to:2024-02-29"#,
        0,
        r#"{"date_to":"2024-02-29"}"#,
    ),
    (
        "organization:A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        0,
        r#"{"organization":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#,
    ),
    (
        "username:",
        2,
        r#"{"message":"Invalid audit search query.","validations":[{"field":"q","detail":"Query element \"username:\" cannot start or end with ':'"}]}"#,
    ),
    (
        "a:b:c",
        2,
        r#"{"message":"Invalid audit search query.","validations":[{"field":"q","detail":"Query element \"a:b:c\" can only contain 1 ':'"}]}"#,
    ),
    (
        "workspace template",
        2,
        r#"{"message":"Invalid audit search query.","validations":[{"field":"resource_type","detail":"Query param \"resource_type\" has invalid value: \"workspace template\" is not a valid value"}]}"#,
    ),
    (
        "workspace resource_type:template action:create action:delete foo:bar",
        2,
        r#"{"message":"Invalid audit search query.","validations":[{"field":"resource_type","detail":"Query param \"resource_type\" provided more than once, found 2 times. Only provide 1 instance of this query param."},{"field":"action","detail":"Query param \"action\" provided more than once, found 2 times. Only provide 1 instance of this query param."},{"field":"foo","detail":"\"foo\" is not a valid query param"}]}"#,
    ),
    (
        "resource_id:nope date_from:2026-02-30 build_reason:lunch",
        2,
        r#"{"message":"Invalid audit search query.","validations":[{"field":"resource_id","detail":"Query param \"resource_id\" must be a valid uuid"},{"field":"date_from","detail":"Query param \"date_from\" must be a valid date format (2006-01-02): parsing time \"2026-02-30\": day out of range"},{"field":"build_reason","detail":"Query param \"build_reason\" has invalid value: \"lunch\" is not a valid value"}]}"#,
    ),
];

#[test]
fn parse_prints_the_filter_or_coders_body() {
    for (filter, code, want) in PARSE_CASES {
        let output = auditlog(&["query", "--parse", filter]);
        assert_eq!(output.status.code(), Some(*code), "{filter:?}");
        assert_eq!(stdout(&output), format!("{want}\n"), "{filter:?}");
    }
}

#[test]
fn sql_shows_placeholders_and_parameters_and_me_needs_as() {
    let output = auditlog(&[
        "query",
        "--sql",
        "--as",
        "Alice",
        "--limit",
        "25",
        "username:me resource_target:\"x' or 1=1\"",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("lower(user_username) = {username:String}"),
        "{text}"
    );
    assert!(!text.lines().next().unwrap().contains("alice"));
    assert!(text.contains("\nusername\tString\t\"alice\"\n"), "{text}");
    assert!(
        text.contains("\nresource_target\tString\t\"x' or 1=1\"\n"),
        "{text}"
    );
    assert!(text.contains("\nlimit\tUInt64\t25\n"), "{text}");

    let output = auditlog(&["query", "--sql", "username:me"]);
    assert_eq!(output.status.code(), Some(2));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["validations"][0]["field"], "username");

    let output = auditlog(&["query", "--sql", "--after", "garbage!", ""]);
    assert_eq!(output.status.code(), Some(1), "other errors exit 1");
}
