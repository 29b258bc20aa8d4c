//! The seeded dataset of the query tests: generated traffic plus hand-made edge events.

use auditlog_event::{Action, Actor, AuditEvent, Diff, Organization, ResourceType};
use auditlog_traffic::TrafficGenerator;
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The span of generated events: two weeks, so date filters cross many midnights.
pub const SPAN_START: OffsetDateTime = datetime!(2025-03-01 00:00 UTC);
/// The end of the span (exclusive).
pub const SPAN_END: OffsetDateTime = datetime!(2025-03-15 00:00 UTC);
/// The day whose edges the hand-made events sit on.
pub const EDGE_DAY: Date = date!(2025 - 03 - 10);

/// The hand-made events' actor: mixed case in username and email.
pub fn edge_user() -> Actor {
    Actor {
        id: Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_ed9e),
        username: "Edge.User".to_owned(),
        email: "Edge.User@Example.COM".to_owned(),
        name: "Edge Case".to_owned(),
    }
}

/// A target that CSV must quote and SQL must never see as text.
pub const TRICKY_TARGET: &str = "Edge-Target MiXed, 'single' \"double\"";
/// A target shaped like SQL injection.
pub const INJECTION_TARGET: &str = "x' OR '1'='1";
/// A target shaped like a server-side parameter placeholder.
pub const PLACEHOLDER_TARGET: &str = "{limit:UInt64}";

/// Everything a query test loads and compares against.
#[derive(Debug)]
pub struct Dataset {
    /// Each event once: what queries must return.
    pub events: Vec<AuditEvent>,
    /// Copies of some events, inserted again to prove queries see each event once.
    pub duplicates: Vec<AuditEvent>,
    /// The generated organizations.
    pub organizations: Vec<Organization>,
}

/// `count` generated events (seeded) plus the hand-made edge events, and duplicates.
pub fn dataset(seed: u64, count: u64) -> Dataset {
    let generator = TrafficGenerator::new(seed).with_time_span(SPAN_START, SPAN_END, count);
    let organizations = generator.organizations().to_vec();
    let mut events: Vec<AuditEvent> = generator.collect();
    events.extend(edge_events(&organizations[0]));
    let duplicates = events.iter().step_by(97).cloned().collect();
    Dataset {
        events,
        duplicates,
        organizations,
    }
}

fn edge_events(organization: &Organization) -> Vec<AuditEvent> {
    let midnight = EDGE_DAY.midnight().assume_utc();
    let last_micro = midnight + time::Duration::days(1) - time::Duration::microseconds(1);
    let placed = [
        // Two at the same instant: only the id orders them.
        (0x01, midnight, TRICKY_TARGET),
        (0x02, midnight, TRICKY_TARGET),
        (0x03, last_micro, INJECTION_TARGET),
        (0x04, midnight + time::Duration::days(1), PLACEHOLDER_TARGET),
        (
            0x05,
            midnight - time::Duration::microseconds(1),
            "edge-before",
        ),
    ];
    placed
        .into_iter()
        .map(|(number, time, target)| AuditEvent {
            id: Uuid::from_u128(0x0195_7a3c_0000_7000_8000_0000_0000_0000 | number),
            time,
            request_id: Uuid::from_u128(0x0e00 | number),
            ip: None,
            user_agent: "edge-test\t\"agent\"".to_owned(),
            user: Some(edge_user()),
            organization: Some(organization.clone()),
            resource_type: ResourceType::Workspace,
            resource_id: Uuid::from_u128(0x0f00 | number),
            resource_target: target.to_owned(),
            resource_icon: String::new(),
            action: Action::Write,
            diff: Diff::new(),
            status_code: 200,
            additional_fields: serde_json::Map::new(),
            build_reason: None,
        })
        .inspect(|event| event.validate().expect("hand-made events are valid"))
        .collect()
}
