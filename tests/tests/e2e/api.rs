//! Whole-system tests of `auditlog serve` over HTTP: authentication and organization
//! scoping, Coder's 400 bodies, the export, and values that look like SQL.

use std::collections::{BTreeSet, HashMap};

use auditlog_event::AuditEvent;
use auditlog_query::{AuditLog, CSV_HEADER, Resolver, Visibility};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::dataset::{Dataset, INJECTION_TARGET, PLACEHOLDER_TARGET, TRICKY_TARGET, dataset};
use auditlog_e2e::percent_encode as encode;

use crate::query_support::{
    ApiServer, TestToken, expected, load_events, migrated_database, row_counts,
};

const AUDITOR: &str = "ann-secret";
const ORG_AUDITOR: &str = "olga-secret";
const EMPTY_ORG_AUDITOR: &str = "nora-secret";
const MEMBER: &str = "mel-secret";

async fn loaded(prefix: &str, num_events: u64) -> (Dataset, clickhouse::Client, String) {
    let dataset = dataset(11, num_events);
    let (client, database) = migrated_database(prefix).await;
    load_events(&client, &dataset.events).await;
    load_events(&client, &dataset.duplicates).await;
    (dataset, client, database)
}

fn tokens(dataset: &Dataset) -> Vec<TestToken> {
    let mut olga = TestToken::new("olga", ORG_AUDITOR, "org_auditor");
    olga.organizations = vec![dataset.organizations[0].id, dataset.organizations[1].id];
    vec![
        TestToken::new("ann", AUDITOR, "auditor"),
        olga,
        TestToken::new("nora", EMPTY_ORG_AUDITOR, "org_auditor"),
        TestToken::new("mel", MEMBER, "member"),
    ]
}

/// Every event the query returns, walked with cursors.
async fn walk(server: &ApiServer, query: &str, token: &str) -> Vec<Value> {
    let mut logs = Vec::new();
    let mut after = String::new();
    loop {
        let response = server
            .get(
                &format!("/api/v2/audit?q={}&limit=5000{after}", encode(query)),
                Some(token),
            )
            .await;
        assert_eq!(response.status, 200, "{query:?}: {}", response.text());
        logs.extend(response.json()["audit_logs"].as_array().unwrap().clone());
        match response.headers.get("x-audit-next-cursor") {
            Some(cursor) => after = format!("&after={}", cursor.to_str().unwrap()),
            None => return logs,
        }
    }
}

fn as_json(events: &[&AuditEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|event| serde_json::to_value(AuditLog::from_event(event)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_roles_and_organization_scoping() {
    let (dataset, _client, database) = loaded("api_auth", 8_000).await;
    let server = ApiServer::start(&database, &tokens(&dataset)).await;

    // No token, a wrong token, a malformed header: 401.
    let response = server.get("/api/v2/audit", None).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.headers["www-authenticate"], "Bearer");
    assert_eq!(
        response.json()["message"],
        "You are signed out or your session has expired. Please sign in again to continue."
    );
    assert_eq!(server.get("/api/v2/audit", Some("guess")).await.status, 401);
    let basic = server
        .get_with_headers("/api/v2/audit", &[("authorization", "Basic YW5uOg==")])
        .await;
    assert_eq!(basic.status, 401);
    assert_eq!(
        server.get("/api/v2/audit/export", None).await.status,
        401,
        "the export needs a token too"
    );
    // A role that is not an auditor: 403.
    let response = server.get("/api/v2/audit", Some(MEMBER)).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json()["message"], "Forbidden.");
    assert_eq!(
        server
            .get("/api/v2/audit/export", Some(MEMBER))
            .await
            .status,
        403
    );
    // Coder's own header works as well as a bearer token.
    let coder_header = server
        .get_with_headers("/api/v2/audit?limit=1", &[("coder-session-token", AUDITOR)])
        .await;
    assert_eq!(coder_header.status, 200);

    // An org auditor sees exactly its organizations' rows, whatever the filter.
    let scope = Visibility::Organizations(vec![
        dataset.organizations[0].id,
        dataset.organizations[1].id,
    ]);
    let scoped_events: Vec<AuditEvent> = dataset
        .events
        .iter()
        .filter(|event| scope.allows(event.organization_id()))
        .cloned()
        .collect();
    assert!(!scoped_events.is_empty() && scoped_events.len() < dataset.events.len());
    let names: HashMap<String, Uuid> = dataset
        .organizations
        .iter()
        .map(|organization| (organization.name.clone(), organization.id))
        .collect();
    let resolver = Resolver::new().with_organizations(&names);
    for query in [
        String::new(),
        "action:delete".to_owned(),
        "resource_type:user".to_owned(),
        format!("organization:{}", dataset.organizations[1].name),
    ] {
        let filter = resolver.parse_and_resolve(&query).unwrap();
        let want = as_json(&expected(&scoped_events, &filter));
        let got = walk(&server, &query, ORG_AUDITOR).await;
        assert_eq!(got.len(), want.len(), "{query:?}");
        assert!(got == want, "{query:?}: org auditor's rows differ");
        let first = server
            .get(
                &format!("/api/v2/audit?q={}", encode(&query)),
                Some(ORG_AUDITOR),
            )
            .await
            .json();
        assert_eq!(first["count"], json!(want.len().min(2001)), "{query:?}");
    }
    // Another organization does not exist for it, by name (Coder's error) or by id (no rows).
    let other = &dataset.organizations[2];
    let response = server
        .get(
            &format!("/api/v2/audit?q=organization:{}", other.name),
            Some(ORG_AUDITOR),
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({
            "message": "Invalid audit search query.",
            "validations": [{
                "field": "organization",
                "detail": format!("Query param \"organization\" has invalid value: organization \"{}\" either does not exist, or you are unauthorized to view it", other.name)
            }]
        })
    );
    let by_id = server
        .get(
            &format!("/api/v2/audit?q=organization:{}", other.id),
            Some(ORG_AUDITOR),
        )
        .await
        .json();
    assert_eq!(by_id["count"], 0);
    assert_eq!(by_id["audit_logs"], json!([]));
    // The auditor sees that organization.
    let auditor = server
        .get(
            &format!("/api/v2/audit?q=organization:{}&limit=1", other.name),
            Some(AUDITOR),
        )
        .await
        .json();
    assert_eq!(
        auditor["audit_logs"][0]["organization"]["id"],
        json!(other.id)
    );
    // An org auditor with no organizations sees nothing at all.
    let nothing = server
        .get("/api/v2/audit", Some(EMPTY_ORG_AUDITOR))
        .await
        .json();
    assert_eq!(nothing["count"], 0);
    // The export applies the same scope.
    let export = server
        .get("/api/v2/audit/export", Some(ORG_AUDITOR))
        .await
        .text();
    let exported_organizations: BTreeSet<String> = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["organization_id"].to_string())
        .collect();
    assert_eq!(export.lines().count(), scoped_events.len());
    assert_eq!(exported_organizations.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_coders_bodies() {
    let (dataset, _client, database) = loaded("api_bodies", 2_000).await;
    let server = ApiServer::start(&database, &tokens(&dataset)).await;
    let bad = |path: &'static str| {
        let server = &server;
        async move {
            let response = server.get(path, Some(AUDITOR)).await;
            assert_eq!(response.status, 400, "{path}: {}", response.text());
            response.json()
        }
    };

    assert_eq!(
        bad("/api/v2/audit?limit=abc&offset=-1&after_id=x").await,
        json!({
            "message": "Query parameters have invalid values.",
            "validations": [
                {"field": "after_id", "detail": "Query param \"after_id\" must be a valid uuid"},
                {"field": "limit", "detail": "Query param \"limit\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"abc\": invalid syntax"},
                {"field": "offset", "detail": "Query param \"offset\" must be a valid 32-bit positive integer: value is negative"}
            ]
        })
    );
    // Paging is checked before the query, as in Coder.
    assert_eq!(
        bad("/api/v2/audit?offset=99999999999&q=action:nope").await["validations"][0]["detail"],
        "Query param \"offset\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"99999999999\": value out of range"
    );
    assert_eq!(
        bad("/api/v2/audit?q=action:nope%20Username:%22%22%20date_from:2026-13-01%20foo:1%20organization:nowhere").await,
        json!({
            "message": "Invalid audit search query.",
            "validations": [
                {"field": "date_from", "detail": "Query param \"date_from\" must be a valid date format (2006-01-02): parsing time \"2026-13-01\": month out of range"},
                {"field": "organization", "detail": "Query param \"organization\" has invalid value: organization \"nowhere\" either does not exist, or you are unauthorized to view it"},
                {"field": "action", "detail": "Query param \"action\" has invalid value: \"nope\" is not a valid value"},
                {"field": "foo", "detail": "\"foo\" is not a valid query param"}
            ]
        })
    );
    assert_eq!(
        bad("/api/v2/audit?q=resource_target:a:b:c").await,
        json!({
            "message": "Invalid audit search query.",
            "validations": [{"field": "q", "detail": "Query element \"resource_target:a:b:c\" can only contain 1 ':'"}]
        })
    );
    assert_eq!(
        bad("/api/v2/audit?limit=20000").await["validations"][0]["field"],
        "limit"
    );
    assert_eq!(
        bad("/api/v2/audit?after=AQ&offset=3").await["validations"][0]["field"],
        "after"
    );
    assert_eq!(
        bad("/api/v2/audit/export?format=parquet").await["validations"][0]["field"],
        "format"
    );

    // Limit 0 (or absent) means 100; `me` is the token's name.
    let page = server
        .get("/api/v2/audit?limit=0", Some(AUDITOR))
        .await
        .json();
    assert_eq!(page["audit_logs"].as_array().unwrap().len(), 100);
    assert_eq!(page["count_cap"], 2000);
    let me = server
        .get("/api/v2/audit?q=username:me", Some(AUDITOR))
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["count"], 0, "nobody called ann acts in the data");
    // The ops endpoints answer next to the API.
    assert_eq!(server.get("/healthz", None).await.status, 200);
    let metrics = server.get("/metrics", None).await.text();
    assert!(metrics.contains("auditlog_api_requests_total"), "{metrics}");
}

/// A minimal RFC 4180 reader: quoted fields, doubled quotes, commas and newlines inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match (in_quotes, character) {
            (true, '"') if characters.peek() == Some(&'"') => {
                field.push('"');
                characters.next();
            }
            (true, '"') => in_quotes = false,
            (true, other) => field.push(other),
            (false, '"') => in_quotes = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, other) => field.push(other),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the csv ends with a newline"
    );
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_streams_every_event_once_as_ndjson_or_csv() {
    // More events than several export chunks, with duplicates stored.
    let (dataset, client, database) = loaded("api_export", 22_000).await;
    let (physical, visible) = row_counts(&client).await;
    assert!(physical > visible);
    let server = ApiServer::start(&database, &tokens(&dataset)).await;
    let all = expected(&dataset.events, &Default::default());

    let response = server.get("/api/v2/audit/export", Some(AUDITOR)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = response
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), all.len());
    assert!(
        lines == as_json(&all),
        "the ndjson export differs from the oracle"
    );

    let response = server
        .get("/api/v2/audit/export?format=csv", Some(AUDITOR))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        response.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("audit-logs.csv")
    );
    let records = parse_csv(&response.text());
    assert_eq!(records[0], CSV_HEADER);
    assert_eq!(records.len(), all.len() + 1);
    let ids: Vec<String> = records[1..]
        .iter()
        .map(|record| record[0].clone())
        .collect();
    let want_ids: Vec<String> = all.iter().map(|event| event.id.to_string()).collect();
    assert_eq!(ids, want_ids);
    let tricky = records
        .iter()
        .find(|record| record[13] == TRICKY_TARGET)
        .expect("the tricky target survives quoting");
    assert_eq!(tricky[10], "edge-test\t\"agent\"");
    assert_eq!(
        tricky,
        &AuditLog::from_event(
            all.iter()
                .find(|event| event.resource_target == TRICKY_TARGET)
                .unwrap()
        )
        .csv_record()
        .to_vec()
    );

    // A filtered export, and one that matches nothing (the CSV still has its header).
    let edge = server
        .get("/api/v2/audit/export?q=username:EDGE.USER", Some(AUDITOR))
        .await
        .text();
    assert_eq!(edge.lines().count(), 5);
    let none = server
        .get(
            "/api/v2/audit/export?q=username:nobody&format=csv",
            Some(AUDITOR),
        )
        .await
        .text();
    assert_eq!(
        parse_csv(&none),
        vec![CSV_HEADER.map(str::to_owned).to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn values_that_look_like_sql_are_only_ever_data() {
    let (dataset, client, database) = loaded("api_injection", 1_000).await;
    let server = ApiServer::start(&database, &tokens(&dataset)).await;
    let (_, visible_before) = row_counts(&client).await;
    let target_of = |target: &str| {
        dataset
            .events
            .iter()
            .find(|event| event.resource_target == target)
            .unwrap()
            .id
    };
    for (query, want) in [
        (
            format!("resource_target:\"{INJECTION_TARGET}\""),
            vec![target_of(INJECTION_TARGET)],
        ),
        (
            format!("resource_target:\"{PLACEHOLDER_TARGET}\""),
            vec![target_of(PLACEHOLDER_TARGET)],
        ),
        ("resource_target:\"x' or 1=1 --\"".to_owned(), vec![]),
        (
            "username:\"a' union select * from system.tables --\"".to_owned(),
            vec![],
        ),
        (
            "email:\"\\\\'; drop table audit_logs; --\"".to_owned(),
            vec![],
        ),
        ("resource_target:\"{offset:uint64}\"".to_owned(), vec![]),
        ("resource_target:\"?\"".to_owned(), vec![]),
        ("resource_target:\"?fields\"".to_owned(), vec![]),
    ] {
        let response = server
            .get(
                &format!("/api/v2/audit?q={}", encode(&query)),
                Some(AUDITOR),
            )
            .await;
        assert_eq!(response.status, 200, "{query}: {}", response.text());
        let ids: Vec<Uuid> = response.json()["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|log| log["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, want, "{query}");
    }
    let (_, visible_after) = row_counts(&client).await;
    assert_eq!(visible_before, visible_after, "the table is intact");
}
