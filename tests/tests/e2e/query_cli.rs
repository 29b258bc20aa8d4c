//! `auditlog query` as a user runs it against a real database: exit codes, queries, counts
//! and pages. (`--parse` and `--sql`, which need no ClickHouse, are tested in the binary's
//! own crate.)

use std::process::Output;

use serde_json::Value;

use crate::dataset::dataset;
use crate::query_support::{auditlog_cli as auditlog, load_events, migrated_database, row_counts};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
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
