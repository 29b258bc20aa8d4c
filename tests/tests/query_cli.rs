//! `auditlog query` as a user runs it: `--parse` on the reference's rules (no ClickHouse
//! needed), `--sql`, exit codes, and queries, counts and pages against a real database.

#[path = "query_support/dataset.rs"]
mod dataset;
#[path = "query_support/mod.rs"]
mod query_support;

use std::process::{Command, Output};

use auditlog_e2e::clickhouse_url;
use auditlog_e2e::pipeline::auditlog_binary;
use serde_json::Value;

use crate::dataset::dataset;
use crate::query_support::{load_events, migrated_database, row_counts};

fn auditlog(args: &[&str], database: Option<&str>) -> Output {
    let mut command = Command::new(auditlog_binary());
    command
        .args(args)
        .env("AUDITLOG_CLICKHOUSE_URL", clickhouse_url())
        .env("AUDITLOG_LOG", "warn")
        .env_remove("AUDITLOG_CONFIG");
    if let Some(database) = database {
        command.env("AUDITLOG_CLICKHOUSE_DATABASE", database);
    }
    command.output().expect("run auditlog")
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
        // A dead ClickHouse URL: --parse must not need one.
        let output = Command::new(auditlog_binary())
            .args(["query", "--parse", filter])
            .env("AUDITLOG_CLICKHOUSE_URL", "http://127.0.0.1:9")
            .output()
            .expect("run auditlog");
        assert_eq!(output.status.code(), Some(*code), "{filter:?}");
        assert_eq!(stdout(&output), format!("{want}\n"), "{filter:?}");
    }
}

#[test]
fn sql_shows_placeholders_and_parameters_and_me_needs_as() {
    let output = auditlog(
        &[
            "query",
            "--sql",
            "--as",
            "Alice",
            "--limit",
            "25",
            "username:me resource_target:\"x' or 1=1\"",
        ],
        None,
    );
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

    let output = auditlog(&["query", "--sql", "username:me"], None);
    assert_eq!(output.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["validations"][0]["field"], "username");

    let output = auditlog(&["query", "--sql", "--after", "garbage!", ""], None);
    assert_eq!(output.status.code(), Some(1), "other errors exit 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_counts_and_pages_against_clickhouse() {
    let dataset = dataset(5, 6_000);
    let (client, database) = migrated_database("query_cli").await;
    load_events(&client, &dataset.events).await;
    load_events(&client, &dataset.duplicates).await;
    let (physical, visible) = row_counts(&client).await;
    assert!(physical > visible);
    let database = Some(database.as_str());

    // The exact count is deduplicated and not capped.
    let output = auditlog(&["query", "--count", ""], database);
    assert_eq!(stdout(&output).trim(), dataset.events.len().to_string());
    let output = auditlog(&["query", "--count", "username:EDGE.USER"], database);
    assert_eq!(stdout(&output).trim(), "5");

    // Piped output defaults to ndjson; pages by offset and by cursor agree.
    let output = auditlog(&["query", "--limit", "40", ""], database);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let first: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(first.len(), 40);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let cursor = stderr
        .lines()
        .find_map(|line| line.strip_prefix("next page: --after "))
        .expect("a next-page cursor on stderr")
        .to_owned();
    let by_cursor = auditlog(
        &["query", "--limit", "40", "--after", &cursor, ""],
        database,
    );
    let by_offset = auditlog(&["query", "--limit", "40", "--offset", "40", ""], database);
    assert_eq!(stdout(&by_cursor), stdout(&by_offset));
    assert_eq!(stdout(&by_cursor).lines().count(), 40);

    // Coder's response shape, CSV and the table.
    let output = auditlog(&["query", "--format", "json", "--limit", "3", ""], database);
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["audit_logs"].as_array().unwrap().len(), 3);
    assert_eq!(body["count"], 2001);
    assert_eq!(body["count_cap"], 2000);
    let output = auditlog(
        &["query", "--format", "csv", "username:edge.user"],
        database,
    );
    assert_eq!(
        stdout(&output).lines().next().unwrap().split(',').next(),
        Some("id")
    );
    let output = auditlog(
        &["query", "--format", "table", "username:edge.user"],
        database,
    );
    let table = stdout(&output);
    assert!(table.starts_with("TIME "), "{table}");
    assert_eq!(table.lines().count(), 6);
    assert!(table.contains("Edge.User updated workspace"), "{table}");

    // An unknown organization name is Coder's error, exit 2; a known one resolves.
    let output = auditlog(&["query", "organization:nowhere"], database);
    assert_eq!(output.status.code(), Some(2));
    let name = dataset.organizations[0].name.to_uppercase();
    let output = auditlog(
        &["query", "--count", &format!("organization:{name}")],
        database,
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let want = dataset
        .events
        .iter()
        .filter(|event| event.organization_id() == dataset.organizations[0].id)
        .count();
    assert_eq!(stdout(&output).trim(), want.to_string());
}
