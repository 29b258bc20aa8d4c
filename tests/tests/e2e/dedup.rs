//! Exact answers without `FINAL`: events stored several times, in several parts of two
//! monthly partitions, with merges stopped so the copies stay apart, still show once on every
//! page (offset and cursor), count once (capped, exact, per chart bucket) and export once.
//!
//! ```text
//!  12,000 events over 2025-03-28 .. 2025-04-04 ──► INSERT (part 1, both partitions)
//!  every 7th, 11th, 13th again, and the hours around midnight of 03-31 ──► parts 2..5
//!  SYSTEM STOP MERGES  ──►  API (page, offset, cursor walk, count), export, histogram, CLI
//!                             vs. the plain-Rust evaluation over the unique events
//! ```

use std::collections::HashMap;

use auditlog_e2e::percent_encode as encode;
use auditlog_e2e::{clickhouse_execute, clickhouse_scalar};
use auditlog_event::AuditEvent;
use auditlog_query::Resolver;
use auditlog_traffic::TrafficGenerator;
use serde_json::Value;
use time::macros::datetime;
use uuid::Uuid;

use crate::query_oracle::{TOKEN, check_filter, expected_json};
use crate::query_support::{
    ApiServer, TestToken, auditlog_cli_ok, expected, load_events, migrated_database,
};

const NUM_EVENTS: u64 = 12_000;
const SEED: u64 = 1131;

/// Each event once, and the copies to store beside them, in separate inserts.
fn events_and_copies() -> (Vec<AuditEvent>, Vec<Vec<AuditEvent>>) {
    let generator = TrafficGenerator::new(SEED).with_time_span(
        datetime!(2025-03-28 00:00 UTC),
        datetime!(2025-04-04 00:00 UTC),
        NUM_EVENTS,
    );
    let events: Vec<AuditEvent> = generator.collect();
    let boundary = datetime!(2025-04-01 00:00 UTC);
    let around_midnight: Vec<AuditEvent> = events
        .iter()
        .filter(|event| (event.time - boundary).abs() < time::Duration::hours(3))
        .cloned()
        .collect();
    let every = |step: usize| events.iter().step_by(step).cloned().collect::<Vec<_>>();
    let copies = vec![every(7), every(11), every(13), around_midnight];
    (events, copies)
}

/// `auditlog query --count` against the database: the exact, uncapped count.
fn cli_count(database: &str, query: &str) -> u64 {
    let stdout = auditlog_cli_ok(&["query", "--count", query], database);
    stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("query --count {query:?} printed {stdout:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_across_parts_and_partitions_show_and_count_once() {
    let (events, copies) = events_and_copies();
    let (client, database) = migrated_database("dedup").await;
    // Merges would remove the copies and let the test pass without the readers' work.
    for table in ["audit_logs", "audit_logs_lookup"] {
        clickhouse_execute(&client, &format!("SYSTEM STOP MERGES {table}")).await;
    }
    load_events(&client, &events).await;
    // Identical blocks would be dropped by insert deduplication; these are all distinct, but
    // the setting makes sure the copies really land.
    let client_keeping_copies = client.clone().with_setting("insert_deduplicate", "0");
    for batch in &copies {
        load_events(&client_keeping_copies, batch).await;
    }

    let num_copies: usize = copies.iter().map(Vec::len).sum();
    let physical = clickhouse_scalar(&client, "SELECT count() FROM audit_logs").await;
    assert_eq!(physical, (events.len() + num_copies) as u64);
    let parts = clickhouse_scalar(
        &client,
        &format!(
            "SELECT count() FROM system.parts WHERE database = '{database}' \
             AND table = 'audit_logs' AND active"
        ),
    )
    .await;
    let partitions = clickhouse_scalar(
        &client,
        &format!(
            "SELECT uniqExact(partition) FROM system.parts WHERE database = '{database}' \
             AND table = 'audit_logs' AND active"
        ),
    )
    .await;
    assert_eq!(partitions, 2, "March and April");
    assert!(
        parts >= 10,
        "{parts} parts: five inserts, each split by month"
    );
    let lookup_rows = clickhouse_scalar(&client, "SELECT count() FROM audit_logs_lookup").await;
    assert_eq!(lookup_rows, physical * 7, "the lookup holds the copies too");

    let server = ApiServer::start(&database, &[TestToken::new("dedup", TOKEN, "auditor")]).await;
    let organizations: HashMap<String, Uuid> = events
        .iter()
        .filter_map(|event| event.organization.as_ref())
        .map(|organization| (organization.name.clone(), organization.id))
        .collect();
    let resolver = Resolver::new().with_organizations(&organizations);

    // A copied event's own keys, so the point filters meet copies in the lookup table.
    let copied = &copies[0][5];
    let user = copied
        .user
        .as_ref()
        .expect("a generated event with an actor");
    let organization = copied.organization.as_ref().expect("an organization");
    let filters = [
        String::new(),
        "resource_type:workspace".to_owned(),
        "date_from:2025-03-31 date_to:2025-04-01".to_owned(),
        format!("username:{}", user.username),
        format!("username:{} email:{}", user.username, user.email),
        format!("organization:{}", organization.name),
        format!(
            "organization:{} action:{}",
            organization.name, copied.action
        ),
        format!("resource_id:{}", copied.resource_id),
        format!("request_id:{}", copied.request_id),
    ];
    for query in &filters {
        let resolved = resolver.parse_and_resolve(query).unwrap();
        let want = expected(&events, &resolved);
        assert!(!want.is_empty(), "{query:?} matches something");
        check_filter(&server, query, &want).await;

        assert_eq!(
            cli_count(&database, query),
            want.len() as u64,
            "{query:?}: exact count"
        );

        let histogram = server
            .get(
                &format!("/api/v2/audit/histogram?q={}", encode(query)),
                Some(TOKEN),
            )
            .await;
        assert_eq!(histogram.status, 200, "{}", histogram.text());
        assert_eq!(
            histogram.json()["total"],
            Value::from(want.len()),
            "{query:?}: chart total"
        );

        let export = server
            .get(
                &format!("/api/v2/audit/export?q={}&format=ndjson", encode(query)),
                Some(TOKEN),
            )
            .await;
        assert_eq!(export.status, 200, "{}", export.text());
        let exported: Vec<Value> = export
            .text()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an NDJSON line"))
            .collect();
        let want_json = expected_json(&want);
        assert_eq!(exported.len(), want.len(), "{query:?}: export length");
        assert!(exported == want_json, "{query:?}: export differs");
    }
    eprintln!(
        "dedup: {} events stored as {physical} rows in {parts} parts of {partitions} \
         partitions; {} filters exact",
        events.len(),
        filters.len()
    );
}
