//! The chart counted from the hourly rollup is the chart counted from the events.
//!
//! ```text
//!  4,000 events over 10 days ──► INSERT ──► charts == the oracle's buckets (clean days: rollup)
//!  copies of one day's events ──► INSERT ──► charts still == the oracle (that day: the table)
//!  a stray rollup row          ──► INSERT ──► charts still == the oracle (that day: the table)
//!  more events on a checked day ──► INSERT ──► charts == the oracle (its census is re-taken)
//! ```
//!
//! Each chart is compared bucket by bucket with a plain-Rust count of the unique events the
//! filter selects, at the width the server chose.

use std::collections::{BTreeMap, HashMap};

use auditlog_event::AuditEvent;
use auditlog_query::Resolver;
use auditlog_testkit::clickhouse_execute;
use auditlog_traffic::TrafficGenerator;
use time::macros::datetime;
use uuid::Uuid;

use crate::query_oracle::TOKEN;
use crate::query_support::{ApiServer, TestToken, expected, load_events, migrated_database};

const NUM_EVENTS: u64 = 4_000;
const SEED: u64 = 2207;

fn encode(query: &str) -> String {
    auditlog_testkit::percent_encode(query)
}

/// The server's chart for `query` as `(bucket width, start → count)`.
async fn chart(server: &ApiServer, query: &str) -> (i64, BTreeMap<i64, u64>) {
    let response = server
        .get(
            &format!("/api/v2/audit/histogram?q={}", encode(query)),
            Some(TOKEN),
        )
        .await;
    assert_eq!(response.status, 200, "{query:?}: {}", response.text());
    // The engine's own time for the chart's queries, as ClickHouse reported it.
    let timing = response
        .headers
        .get("server-timing")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        timing.starts_with("clickhouse;dur="),
        "Server-Timing {timing:?}"
    );
    let body = response.json();
    let width = body["bucket_seconds"].as_i64().expect("bucket_seconds");
    let buckets = body["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|bucket| {
            (
                bucket["start"].as_i64().expect("start"),
                bucket["count"].as_u64().expect("count"),
            )
        })
        .collect();
    (width, buckets)
}

/// The oracle: the unique events `query` selects, per bucket of `width` seconds.
fn oracle(
    events: &[AuditEvent],
    resolver: &Resolver<'_>,
    query: &str,
    width: i64,
) -> BTreeMap<i64, u64> {
    let resolved = resolver.parse_and_resolve(query).unwrap();
    let mut buckets = BTreeMap::new();
    for event in expected(events, &resolved) {
        let seconds = event.time.unix_timestamp();
        *buckets
            .entry(seconds.div_euclid(width) * width)
            .or_default() += 1;
    }
    buckets
}

async fn check_all(
    server: &ApiServer,
    events: &[AuditEvent],
    resolver: &Resolver<'_>,
    filters: &[String],
    stage: &str,
) {
    for query in filters {
        let (width, got) = chart(server, query).await;
        let want = oracle(events, resolver, query, width);
        assert!(!want.is_empty(), "{stage}: {query:?} matches something");
        assert_eq!(got, want, "{stage}: {query:?} at {width} s buckets");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rollup_chart_is_exact_through_copies_stray_rows_and_late_events() {
    let mut events: Vec<AuditEvent> = TrafficGenerator::new(SEED)
        .with_time_span(
            datetime!(2025-03-01 00:00 UTC),
            datetime!(2025-03-11 00:00 UTC),
            NUM_EVENTS,
        )
        .collect();
    let (client, database) = migrated_database("chart").await;
    clickhouse_execute(&client, "SYSTEM STOP MERGES audit_logs").await;
    load_events(&client, &events).await;
    let server = ApiServer::start(&database, &[TestToken::new("chart", TOKEN, "auditor")]).await;

    let organizations: HashMap<String, Uuid> = events
        .iter()
        .filter_map(|event| event.organization.as_ref())
        .map(|organization| (organization.name.clone(), organization.id))
        .collect();
    let resolver = Resolver::new().with_organizations(&organizations);
    let organization = events[17].organization.as_ref().expect("an organization");
    // Ten days: day-wide buckets, from the rollup; one day: 15-minute buckets, from the table.
    let filters = [
        String::new(),
        "resource_type:workspace".to_owned(),
        "action:create".to_owned(),
        format!("organization:{}", organization.name),
        "date_from:2025-03-03 date_to:2025-03-08".to_owned(),
        "date_from:2025-03-04 date_to:2025-03-04".to_owned(),
        format!(
            "username:{}",
            events[3].user.as_ref().expect("an actor").username
        ),
    ];
    check_all(&server, &events, &resolver, &filters, "as loaded").await;

    // Copies of the fifth day's events: counted once, on that day and no other.
    let day_five: Vec<AuditEvent> = events
        .iter()
        .filter(|event| event.time.day() == 5)
        .cloned()
        .collect();
    assert!(!day_five.is_empty());
    let keeping_copies = client.clone().with_setting("insert_deduplicate", "0");
    load_events(&keeping_copies, &day_five).await;
    check_all(&server, &events, &resolver, &filters, "with copies").await;

    // A rollup row no event stands behind (a repeated backfill, a hand-made insert): the day
    // it falls on no longer agrees with the table, and is counted from the table.
    clickhouse_execute(
        &client,
        "INSERT INTO audit_logs_hourly (time, organization_id, resource_type, action, build_reason, rows) \
         VALUES ('2025-03-02 10:00:00', '00000000-0000-0000-0000-000000000000', 'workspace', 'create', '', 500)",
    )
    .await;
    check_all(
        &server,
        &events,
        &resolver,
        &filters,
        "with a stray rollup row",
    )
    .await;

    // New events on a day already checked: the census follows.
    let late: Vec<AuditEvent> = TrafficGenerator::new(SEED + 1)
        .with_time_span(
            datetime!(2025-03-07 00:00 UTC),
            datetime!(2025-03-08 00:00 UTC),
            300,
        )
        .collect();
    load_events(&client, &late).await;
    events.extend(late);
    check_all(&server, &events, &resolver, &filters, "with late events").await;
    eprintln!(
        "chart: {} events, {} filters exact at every stage",
        events.len(),
        filters.len()
    );
}
