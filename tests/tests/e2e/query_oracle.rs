//! The oracle test: over 50,000 seeded events (plus hand-made edge events and deliberate
//! duplicate rows), `GET /api/v2/audit` of a real `auditlog serve` returns, for every
//! filter below, exactly the events a plain Rust evaluation of the same filter selects, in
//! the same order, whole (every field of Coder's JSON), across offset and cursor pages,
//! with Coder's capped count.

use std::collections::{BTreeMap, HashMap};

use auditlog_event::{Action, Actor, AuditEvent, BuildReason, ResourceType};
use auditlog_query::{AuditLog, COUNT_CAP, Resolver};
use serde_json::Value;
use uuid::Uuid;

use crate::dataset::{EDGE_DAY, INJECTION_TARGET, PLACEHOLDER_TARGET, dataset, edge_user};
use auditlog_e2e::percent_encode as encode;

use crate::query_support::{
    ApiServer, TestToken, expected, load_events, migrated_database, row_counts,
};

const NUM_GENERATED_EVENTS: u64 = 50_000;
const FIRST_PAGE_LIMIT: usize = 100;
const WALK_PAGE_LIMIT: usize = 5_000;
pub(crate) const TOKEN: &str = "oracle-secret";

/// Alternates the case of ASCII letters: "alice" → "AlIcE".
fn mixed_case(text: &str) -> String {
    text.chars()
        .enumerate()
        .map(|(index, character)| {
            if index % 2 == 0 {
                character.to_ascii_uppercase()
            } else {
                character.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The user who acts in the most events.
fn busiest_user(events: &[AuditEvent]) -> Actor {
    let mut counts: BTreeMap<Uuid, (usize, &Actor)> = BTreeMap::new();
    for user in events.iter().filter_map(|event| event.user.as_ref()) {
        counts.entry(user.id).or_insert((0, user)).0 += 1;
    }
    counts
        .into_values()
        .max_by_key(|(count, _)| *count)
        .map(|(_, user)| user.clone())
        .expect("at least one user")
}

fn filters(events: &[AuditEvent], organizations: &[auditlog_event::Organization]) -> Vec<String> {
    let busiest = busiest_user(events);
    let created_workspace = events
        .iter()
        .find(|event| {
            event.resource_type == ResourceType::Workspace && event.action == Action::Create
        })
        .expect("a workspace creation");
    let deleted = events
        .iter()
        .rev()
        .find(|event| event.action == Action::Delete)
        .expect("a deletion");
    let day = EDGE_DAY;
    let next_day = EDGE_DAY.next_day().unwrap();
    let edge = edge_user();
    let mut filters = vec![
        // Coder's UI presets and the empty filter.
        String::new(),
        "resource_type:workspace action:create".to_owned(),
        "resource_type:template action:create".to_owned(),
        "resource_type:user action:delete".to_owned(),
        "resource_type:workspace_build action:start build_reason:initiator".to_owned(),
        "resource_type:api_key action:login".to_owned(),
        // A bare word is a resource type; the whole query is lowercased first.
        "WorkSpace".to_owned(),
        "  Action:Stop   RESOURCE_TYPE:workspace_build  ".to_owned(),
        // Actor: mixed case, me, email.
        format!("username:{}", mixed_case(&busiest.username)),
        format!("username:\"{}\"", busiest.username.to_uppercase()),
        "username:me".to_owned(),
        "username:me action:login".to_owned(),
        format!("email:{}", mixed_case(&busiest.email)),
        format!("username:{} date_from:{day}", edge.username.to_uppercase()),
        format!("email:{}", edge.email.to_lowercase()),
        // Resource and request ids in every accepted spelling.
        format!("resource_id:{}", created_workspace.resource_id),
        format!(
            "resource_id:{{{}}}",
            created_workspace.resource_id.to_string().to_uppercase()
        ),
        format!("resource_id:{}", deleted.resource_id.simple()),
        format!("request_id:\"urn:uuid:{}\"", deleted.request_id),
        format!("request_id:{}", created_workspace.request_id),
        // Targets, case-insensitive, quoted, SQL-shaped and placeholder-shaped.
        format!(
            "resource_target:\"{}\"",
            mixed_case(&created_workspace.resource_target)
        ),
        format!("resource_target:\"{INJECTION_TARGET}\""),
        format!("resource_target:\"{PLACEHOLDER_TARGET}\""),
        "resource_target:\"x' or 1=1 --\"".to_owned(),
        // Organizations by name (any case) and by id.
        format!("organization:{}", organizations[0].name.to_uppercase()),
        format!("organization:{}", organizations[1].id),
        format!(
            "organization:{} resource_type:workspace_build build_reason:autostart",
            mixed_case(&organizations[2].name)
        ),
        // Dates: midnight edges of one day, open ranges, ranges outside the data.
        format!("date_from:{day} date_to:{day}"),
        format!("date_from:{next_day} date_to:{next_day}"),
        format!("date_from:{day}"),
        format!("date_to:{day}"),
        format!("date_to:{day} username:{}", edge.username),
        "date_from:2025-03-15".to_owned(),
        "date_to:2025-02-28".to_owned(),
        "date_from:2025-03-12 date_to:2025-03-11".to_owned(),
        // Combinations.
        format!(
            "username:{} action:login date_from:2025-03-02 date_to:2025-03-08",
            busiest.username
        ),
        format!(
            "email:{} organization:{}",
            busiest.email, organizations[0].name
        ),
        "resource_type:workspace action:create build_reason:initiator".to_owned(),
        "resource_type:workspace_build action:stop build_reason:autostop date_from:2025-03-05"
            .to_owned(),
        // Empty results.
        "resource_type:license action:connect".to_owned(),
        "username:nobody-at-all".to_owned(),
        format!("resource_id:{}", Uuid::from_u128(0xdead_beef)),
        "build_reason:cli resource_type:template".to_owned(),
    ];
    filters.extend(
        ResourceType::ALL
            .iter()
            .map(|resource_type| format!("resource_type:{resource_type}")),
    );
    filters.extend(Action::ALL.iter().map(|action| format!("action:{action}")));
    filters.extend(
        BuildReason::ALL
            .iter()
            .map(|reason| format!("build_reason:{reason}")),
    );
    filters
}

pub(crate) fn expected_json(events: &[&AuditEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|event| serde_json::to_value(AuditLog::from_event(event)).unwrap())
        .collect()
}

/// Checks one filter: first page by offset (with count), second page, a deep offset page,
/// and a cursor walk over every matching event.
pub(crate) async fn check_filter(server: &ApiServer, query: &str, want: &[&AuditEvent]) {
    let q = encode(query);
    let want_json = expected_json(want);

    let response = server
        .get(
            &format!("/api/v2/audit?q={q}&limit={FIRST_PAGE_LIMIT}"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(response.status, 200, "{query:?}: {}", response.text());
    let body = response.json();
    assert_eq!(
        body["count"],
        Value::from((want.len() as u64).min(COUNT_CAP + 1)),
        "{query:?}: capped count"
    );
    assert_eq!(body["count_cap"], Value::from(COUNT_CAP));
    let first_page = body["audit_logs"].as_array().unwrap();
    let first_end = want.len().min(FIRST_PAGE_LIMIT);
    assert_eq!(
        first_page.as_slice(),
        &want_json[..first_end],
        "{query:?}: first page"
    );

    if want.len() > FIRST_PAGE_LIMIT {
        let offset = FIRST_PAGE_LIMIT;
        let response = server
            .get(
                &format!("/api/v2/audit?q={q}&limit={FIRST_PAGE_LIMIT}&offset={offset}"),
                Some(TOKEN),
            )
            .await;
        let end = want.len().min(offset + FIRST_PAGE_LIMIT);
        assert_eq!(
            response.json()["audit_logs"].as_array().unwrap().as_slice(),
            &want_json[offset..end],
            "{query:?}: second page"
        );
    }
    if want.len() > 3 {
        let offset = want.len() - 3;
        let response = server
            .get(&format!("/api/v2/audit?q={q}&offset={offset}"), Some(TOKEN))
            .await;
        assert_eq!(
            response.json()["audit_logs"].as_array().unwrap().as_slice(),
            &want_json[offset..],
            "{query:?}: deep offset page"
        );
    }

    // The cursor walk: every matching event, each once, in order.
    let mut walked: Vec<Value> = Vec::with_capacity(want.len());
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_deref()
            .map(|cursor| format!("&after={cursor}"))
            .unwrap_or_default();
        let response = server
            .get(
                &format!("/api/v2/audit?q={q}&limit={WALK_PAGE_LIMIT}{cursor}"),
                Some(TOKEN),
            )
            .await;
        assert_eq!(response.status, 200, "{query:?}: {}", response.text());
        let next = response
            .headers
            .get("x-audit-next-cursor")
            .map(|value| value.to_str().unwrap().to_owned());
        let page = response.json()["audit_logs"].as_array().unwrap().clone();
        assert!(page.len() <= WALK_PAGE_LIMIT);
        assert_eq!(
            next.is_some(),
            page.len() == WALK_PAGE_LIMIT,
            "{query:?}: a cursor comes with full pages only"
        );
        walked.extend(page);
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(walked.len(), want.len(), "{query:?}: cursor walk length");
    assert!(walked == want_json, "{query:?}: cursor walk differs");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_returns_exactly_what_the_oracle_selects() {
    let dataset = dataset(2026, NUM_GENERATED_EVENTS);
    let (client, database) = migrated_database("query_oracle").await;
    load_events(&client, &dataset.events).await;
    load_events(&client, &dataset.duplicates).await;
    let (physical, visible) = row_counts(&client).await;
    assert_eq!(visible, dataset.events.len() as u64);
    assert_eq!(
        physical,
        (dataset.events.len() + dataset.duplicates.len()) as u64,
        "the duplicates are really stored"
    );

    let busiest = busiest_user(&dataset.events);
    // The token is named after a user, so `username:me` means that user.
    let me: &'static str = Box::leak(busiest.username.clone().into_boxed_str());
    let server = ApiServer::start(&database, &[TestToken::new(me, TOKEN, "auditor")]).await;

    let organizations: HashMap<String, Uuid> = dataset
        .organizations
        .iter()
        .map(|organization| (organization.name.clone(), organization.id))
        .collect();
    let resolver = Resolver::new()
        .with_caller_username(me)
        .with_organizations(&organizations);

    let filters = filters(&dataset.events, &dataset.organizations);
    assert!(filters.len() >= 40, "{} filters", filters.len());
    let mut num_empty = 0;
    let mut num_capped = 0;
    for query in &filters {
        let resolved = resolver
            .parse_and_resolve(query)
            .unwrap_or_else(|error| panic!("{query:?} is a valid filter: {error}"));
        let want = expected(&dataset.events, &resolved);
        num_empty += usize::from(want.is_empty());
        num_capped += usize::from(want.len() as u64 > COUNT_CAP);
        check_filter(&server, query, &want).await;
    }
    // The list covers empty results and counts above the cap, not just easy middles.
    assert!(num_empty >= 5, "{num_empty} empty results");
    assert!(num_capped >= 5, "{num_capped} capped counts");
    eprintln!(
        "oracle: {} filters agree over {} events ({num_empty} empty, {num_capped} above the cap)",
        filters.len(),
        dataset.events.len()
    );
}
