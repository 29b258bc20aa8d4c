//! The matcher against the SQL's rules, one rule per test, each with the case that the rule
//! exists for.

use auditlog_event::testing::sample_event;
use auditlog_event::{Action, Actor, BuildReason, ResourceType};
use auditlog_query::{AuditFilter, Resolver};
use time::macros::datetime;
use uuid::Uuid;

use super::*;

fn filter(query: &str) -> ResolvedFilter {
    AuditFilter::parse(query)
        .unwrap()
        .resolve(&Resolver::new())
        .unwrap()
}

#[test]
fn the_empty_filter_matches_everything() {
    let mut event = sample_event();
    assert!(matches(&filter(""), &event));
    event.user = None;
    event.organization = None;
    assert!(matches(&filter(""), &event));
}

#[test]
fn conditions_are_anded() {
    let mut event = sample_event();
    event.resource_type = ResourceType::Workspace;
    event.action = Action::Delete;
    assert!(matches(
        &filter("resource_type:workspace action:delete"),
        &event
    ));
    assert!(!matches(
        &filter("resource_type:workspace action:create"),
        &event
    ));
    assert!(!matches(
        &filter("resource_type:template action:delete"),
        &event
    ));
    // A bare word is a resource type, as in Coder.
    assert!(matches(&filter("workspace"), &event));
}

#[test]
fn username_email_and_target_ignore_case_on_both_sides() {
    let mut event = sample_event();
    event.user = Some(Actor {
        id: Uuid::from_u128(9),
        username: "Alice".into(),
        email: "Alice@Example.COM".into(),
        name: "Alice A.".into(),
    });
    event.resource_target = "My-Workspace".into();
    for query in [
        "username:alice",
        "username:ALICE",
        "email:alice@example.com",
        "resource_target:my-workspace",
        "resource_target:MY-WORKSPACE",
    ] {
        assert!(matches(&filter(query), &event), "{query}");
    }
    assert!(!matches(&filter("username:alicia"), &event));
    assert!(!matches(&filter("email:bob@example.com"), &event));
    // Equality, not containment.
    assert!(!matches(&filter("resource_target:my"), &event));
}

#[test]
fn only_ascii_is_folded_on_the_stored_side_as_clickhouse_lower_does() {
    let mut event = sample_event();
    event.resource_target = "ÄRGER".into();
    // lower('ÄRGER') in ClickHouse is 'Ärger': the lowercase spelling does not find it.
    assert!(!matches(&filter("resource_target:ärger"), &event));
    event.resource_target = "Ärger".into();
    assert!(!matches(&filter("resource_target:ärger"), &event));
    // Its ASCII letters fold; a non-ASCII lowercase letter is found as it is.
    event.resource_target = "äRGER".into();
    assert!(matches(&filter("resource_target:ÄRGER"), &event));
}

#[test]
fn system_events_have_no_username_or_email_and_a_nil_user_id() {
    let mut event = sample_event();
    event.user = None;
    assert!(!matches(&filter("username:alice"), &event));
    assert!(!matches(&filter("email:alice@example.com"), &event));
    let me = Resolver::new().with_caller_id(Uuid::from_u128(5));
    let mine = AuditFilter::parse("username:me")
        .unwrap()
        .resolve(&me)
        .unwrap();
    assert!(!matches(&mine, &event));
    event.user = Some(Actor {
        id: Uuid::from_u128(5),
        username: "renamed".into(),
        email: String::new(),
        name: String::new(),
    });
    // `me` with a caller id matches the id, whatever the name was then.
    assert!(matches(&mine, &event));
}

#[test]
fn dates_are_whole_utc_days() {
    let mut event = sample_event();
    event.time = datetime!(2026-03-01 00:00:00 UTC);
    assert!(matches(&filter("date_from:2026-03-01"), &event));
    assert!(!matches(&filter("date_from:2026-03-02"), &event));
    assert!(matches(&filter("date_to:2026-03-01"), &event));
    assert!(!matches(&filter("date_to:2026-02-28"), &event));
    // The last microsecond of the day is in it (Coder's `<= 23:59:59` would miss it).
    event.time = datetime!(2026-03-01 23:59:59.999999 UTC);
    assert!(matches(&filter("date_to:2026-03-01"), &event));
    assert!(matches(
        &filter("date_from:2026-03-01 date_to:2026-03-01"),
        &event
    ));
    event.time = datetime!(2026-03-02 00:00:00 UTC);
    assert!(!matches(&filter("date_to:2026-03-01"), &event));
}

#[test]
fn build_reason_keeps_builds_and_workspace_creations_only() {
    let mut event = sample_event();
    event.build_reason = Some(BuildReason::Autostart);
    event.resource_type = ResourceType::WorkspaceBuild;
    event.action = Action::Start;
    assert!(matches(&filter("build_reason:autostart"), &event));
    assert!(!matches(&filter("build_reason:initiator"), &event));
    event.resource_type = ResourceType::Workspace;
    event.action = Action::Create;
    assert!(matches(&filter("build_reason:autostart"), &event));
    // A workspace event that is not a creation never matches, even carrying a reason.
    event.action = Action::Write;
    assert!(!matches(&filter("build_reason:autostart"), &event));
    event.resource_type = ResourceType::Template;
    event.action = Action::Create;
    assert!(!matches(&filter("build_reason:autostart"), &event));
    event.resource_type = ResourceType::WorkspaceBuild;
    event.build_reason = None;
    assert!(!matches(&filter("build_reason:autostart"), &event));
}

#[test]
fn ids_and_organizations_compare_exactly() {
    let mut event = sample_event();
    let organization = event.organization.as_ref().unwrap().id;
    assert!(matches(
        &filter(&format!("organization:{organization}")),
        &event
    ));
    assert!(matches(
        &filter(&format!("request_id:{}", event.request_id)),
        &event
    ));
    assert!(matches(
        &filter(&format!("resource_id:{}", event.resource_id)),
        &event
    ));
    assert!(!matches(
        &filter(&format!("request_id:{}", Uuid::from_u128(3))),
        &event
    ));
    event.organization = None;
    // Site-wide events are stored under the nil organization id.
    assert!(!matches(
        &filter(&format!("organization:{organization}")),
        &event
    ));
    assert!(matches(
        &filter(&format!("organization:{}", Uuid::nil())),
        &event
    ));
}

#[test]
fn unknown_enum_values_compare_as_stored() {
    let mut event = sample_event();
    event.action = Action::from_wire("explode");
    assert!(!matches(&filter("action:delete"), &event));
    event.resource_type = ResourceType::from_wire("spaceship");
    assert!(!matches(&filter("resource_type:workspace"), &event));
}
