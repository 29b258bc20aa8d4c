//! The id rule (docs/schema.md#one-event-its-id-and-its-time): an event is identified by its
//! `(id, time)` pair. An event A and a second event B under the same id one second later (a
//! producer that re-stamped a re-send) go through the real pipeline; a byte-identical copy
//! of A's row is then stored as a replayed batch stores it. The copy collapses, B is kept:
//! A and B are two events to every reader, the page and its count, offset and cursor pages,
//! the export, the chart, the exact count of the CLI, the analysts' view and rollups, and
//! `auditlog verify`.
//!
//! ```text
//!  background events, A, B = A at time + 1 s ──► Kafka ──► ingester ──► ClickHouse
//!  A's row again (same source position, insert deduplication off) ──► ClickHouse
//!  request_id:<A's> ──► API page + count, offsets, cursor, export, chart, CLI --count
//!                   ──► events view, daily_events, failed_requests_hourly; auditlog verify
//! ```

use std::time::{Duration, Instant};

use auditlog_e2e::clickhouse_execute;
use auditlog_e2e::percent_encode as encode;
use auditlog_e2e::pipeline::{PipelineTarget, events, produce_events};
use auditlog_event::AuditEvent;
use serde_json::Value;
use uuid::Uuid;

use crate::query_oracle::{TOKEN, check_filter, expected_json};
use crate::query_support::{ApiServer, TestToken, auditlog_cli_ok};

const NUM_BACKGROUND: usize = 200;
const INGEST_TIMEOUT: Duration = Duration::from_secs(180);

async fn scalar(client: &clickhouse::Client, sql: &str) -> u64 {
    client
        .query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// A, and B: A under the same id one second later, in the same day, hour, organization,
/// type, action and status (one group of every rollup), with a request id of their own.
fn one_id_two_times(template: &AuditEvent) -> (AuditEvent, AuditEvent) {
    let mut first = template.clone();
    first.id = Uuid::now_v7();
    first.request_id = Uuid::now_v7();
    first.status_code = 403;
    let yesterday = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    first.time = yesterday
        .replace_time(time::macros::time!(12:00:00.123456))
        .to_offset(time::UtcOffset::UTC);
    let mut second = first.clone();
    second.time = first.time + time::Duration::seconds(1);
    (first, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_id_at_two_times_is_two_events_and_copies_are_one() {
    let target = PipelineTarget::create("one_id", 1).await;
    target.migrate();
    let background = events(2121, NUM_BACKGROUND);
    let (first, second) = one_id_two_times(&background[0]);
    let mut produced = background.clone();
    produced.extend([first.clone(), second.clone()]);

    let client = target.client();
    // Merges would remove the copy and let the test pass without the readers' work.
    for table in ["audit_logs", "audit_logs_lookup"] {
        clickhouse_execute(&client, &format!("SYSTEM STOP MERGES {table}")).await;
    }
    let mut ingester = target.spawn_ingester("one_id", &["--batch-rows", "50"]);
    produce_events(&target.topic, &produced).await;
    let stored = format!(
        "SELECT count() FROM audit_logs WHERE id = toUUID('{}') AND time = \
         toDateTime64('{}', 6, 'UTC')",
        second.id,
        second
            .time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let deadline = Instant::now() + INGEST_TIMEOUT;
    while scalar(&client, &stored).await == 0 {
        assert!(Instant::now() < deadline, "B was not ingested in time");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status = ingester.terminate(Duration::from_secs(30)).expect("exits");
    let log = ingester.log();
    assert!(status.success(), "{log}");
    let copy = format!(
        "INSERT INTO audit_logs SELECT * FROM audit_logs WHERE id = toUUID('{}') AND time = \
         toDateTime64('{}', 6, 'UTC')",
        first.id,
        first
            .time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    client
        .clone()
        .with_setting("insert_deduplicate", "0")
        .query(&copy)
        .execute()
        .await
        .unwrap_or_else(|error| panic!("{copy}: {error}"));

    let physical = scalar(&client, "SELECT count() FROM audit_logs").await;
    assert_eq!(
        physical,
        NUM_BACKGROUND as u64 + 3,
        "A, its copy and B are three rows"
    );
    let num_events = NUM_BACKGROUND as u64 + 2;

    let request = first.request_id;
    let query = format!("request_id:{request}");
    let q = encode(&query);
    let want = [&second, &first];
    let want_json = expected_json(&want);
    let server = ApiServer::start(
        &target.database,
        &[TestToken::new("one_id", TOKEN, "auditor")],
    )
    .await;

    // The page and its count, a deep offset, and a cursor walk of the whole result.
    check_filter(&server, &query, &want).await;
    // Offset pages and a cursor walk of one event per page: each event once, in order.
    for (offset, event) in want_json.iter().enumerate() {
        let response = server
            .get(
                &format!("/api/v2/audit?q={q}&limit=1&offset={offset}"),
                Some(TOKEN),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        assert_eq!(
            body["count"],
            Value::from(2),
            "count beside offset {offset}"
        );
        assert_eq!(body["audit_logs"].as_array().unwrap(), &vec![event.clone()]);
    }
    let mut walked = Vec::new();
    let mut after = String::new();
    loop {
        let response = server
            .get(&format!("/api/v2/audit?q={q}&limit=1{after}"), Some(TOKEN))
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        walked.extend(response.json()["audit_logs"].as_array().unwrap().clone());
        match response.headers.get("x-audit-next-cursor") {
            Some(cursor) => after = format!("&after={}", cursor.to_str().unwrap()),
            None => break,
        }
        assert!(walked.len() <= 3, "the walk ends");
    }
    assert_eq!(walked, want_json, "cursor walk, one per page");

    let export = server
        .get(
            &format!("/api/v2/audit/export?q={q}&format=ndjson"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.text());
    let exported: Vec<Value> = export
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an NDJSON line"))
        .collect();
    assert_eq!(exported, want_json, "export");

    let chart = server
        .get(&format!("/api/v2/audit/histogram?q={q}"), Some(TOKEN))
        .await;
    assert_eq!(chart.status, 200, "{}", chart.text());
    let chart = chart.json();
    let bucketed: u64 = chart["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["count"].as_u64().unwrap())
        .sum();
    assert_eq!((bucketed, chart["total"].as_u64()), (2, Some(2)), "{chart}");

    for (filter, want) in [(query.as_str(), 2), ("", num_events)] {
        let printed = auditlog_cli_ok(&["query", "--count", filter], &target.database);
        assert_eq!(printed.trim(), want.to_string(), "query --count {filter:?}");
    }

    // The analysts' view and rollups.
    let request_rows = format!("SELECT count() FROM events WHERE request_id = toUUID('{request}')");
    assert_eq!(scalar(&client, &request_rows).await, 2, "events view");
    assert_eq!(
        scalar(&client, "SELECT count() FROM events").await,
        num_events
    );
    // The rollups, against the produced events counted once per (id, time) in Rust.
    let organization = |event: &AuditEvent| event.organization.as_ref().map(|org| org.id);
    let same_group = |event: &&AuditEvent| {
        organization(event) == organization(&first)
            && event.resource_type == first.resource_type
            && event.action == first.action
            && event.time.date() == first.time.date()
            && event.status_code / 100 == 4
    };
    let distinct = |events: Vec<&AuditEvent>| {
        let mut keys: Vec<(Uuid, i128)> = events
            .iter()
            .map(|event| (event.id, event.time.unix_timestamp_nanos()))
            .collect();
        keys.sort();
        keys.dedup();
        keys.len() as u64
    };
    let in_group = distinct(produced.iter().filter(same_group).collect());
    assert!(in_group >= 2, "A and B are in the group");
    let daily = format!(
        "SELECT toUInt64(sum(events)) FROM daily_events \
         WHERE organization_id = toUUID('{}') AND resource_type = '{}' AND action = '{}' \
         AND day = toDate('{}') AND status_class = '4xx'",
        organization(&first).unwrap_or_default(),
        first.resource_type,
        first.action,
        first.time.date(),
    );
    assert_eq!(
        scalar(&client, &daily).await,
        in_group,
        "daily_events, A's group"
    );
    assert_eq!(
        scalar(&client, "SELECT toUInt64(sum(events)) FROM daily_events").await,
        num_events,
        "daily_events in all"
    );
    let user = |event: &AuditEvent| event.user.as_ref().map(|user| user.id);
    let hour = first.time.unix_timestamp() / 3600;
    let failed_in_hour = distinct(
        produced
            .iter()
            .filter(|event| {
                user(event) == user(&first)
                    && organization(event) == organization(&first)
                    && event.time.unix_timestamp() / 3600 == hour
                    && event.status_code >= 400
            })
            .collect(),
    );
    let hourly = format!(
        "SELECT toUInt64(sum(failures)) FROM failed_requests_hourly \
         WHERE user_id = toUUID('{}') AND organization_id = toUUID('{}') \
         AND toUnixTimestamp(hour) = {}",
        user(&first).unwrap_or_default(),
        organization(&first).unwrap_or_default(),
        hour * 3600,
    );
    assert_eq!(
        scalar(&client, &hourly).await,
        failed_in_hour,
        "failed_requests_hourly, A's hour"
    );

    target.assert_verifies(num_events, &log);
}
